#pragma once

#include <vector>

#include "core/types.h"
#include "db/postgres/connection.h"

namespace herald::pg {

// The columns every read of deliveries selects, in the order read_deliveries() expects.
inline constexpr const char* kDeliveryColumns =
    "id, app_id, msg_id, endpoint_id, status, attempts, due_at, trigger, created_at, updated_at, "
    "claim";

// Every row of `r` (columns as kDeliveryColumns). A delivery without a due time (parked, or
// finished) reads next_attempt_at 0.
std::vector<Delivery> read_deliveries(const Result& r);

}  // namespace herald::pg
