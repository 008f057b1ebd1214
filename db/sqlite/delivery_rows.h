#pragma once

#include <vector>

#include "core/types.h"
#include "db/sqlite/connection.h"

namespace herald::sqlite {

// The columns every read of deliveries selects, in the order read_delivery() expects.
inline constexpr const char* kDeliveryColumns =
    "id, app_id, msg_id, endpoint_id, status, attempts, due_at, trigger, created_at, updated_at";

// The delivery in the current row of `st` (columns as kDeliveryColumns). A delivery without a
// due time (parked, or finished) reads next_attempt_at 0.
Delivery read_delivery(const Stmt& st);
// Every row `st` yields.
std::vector<Delivery> read_deliveries(Stmt& st);

}  // namespace herald::sqlite
