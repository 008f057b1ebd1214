#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"

namespace herald {

// Prefixes of herald's ids.
inline constexpr std::string_view kAppPrefix = "app";
inline constexpr std::string_view kEndpointPrefix = "ep";
inline constexpr std::string_view kMessagePrefix = "msg";
inline constexpr std::string_view kAttemptPrefix = "atmpt";
inline constexpr std::string_view kDeliveryPrefix = "dlv";
inline constexpr std::string_view kTokenPrefix = "tok";

// Returns "<prefix>_<22 base62 chars>": 48 bits of milliseconds since the epoch followed by
// 80 random bits, encoded fixed-width in ASCII order, so ids sort by creation time as strings.
// Within one process, ids made later never sort before ids made earlier (same millisecond:
// the random part is incremented). Thread-safe.
std::string new_id(std::string_view prefix, TimeMs now_ms);

// True if `id` looks like an id new_id would make with `prefix`.
bool is_id_with_prefix(std::string_view id, std::string_view prefix);

// When an id made by new_id was made (its milliseconds part); nullopt if it is not such an id.
std::optional<TimeMs> id_time(std::string_view id);

// The smallest id that any id made at `t` or later sorts at or after: "<prefix>_<time part>000..".
// Used to turn a time bound into an id bound for listing.
std::string id_lower_bound(std::string_view prefix, TimeMs t);

}  // namespace herald
