#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"

namespace herald {

// Formats t as RFC 3339 UTC with millisecond precision: "2024-05-01T12:00:00.123Z".
std::string format_rfc3339(TimeMs t);

// Parses an RFC 3339 date-time ("2024-05-01T12:00:00Z", fractional seconds and
// "+hh:mm"/"-hh:mm" offsets allowed). Returns nullopt if malformed.
std::optional<TimeMs> parse_rfc3339(std::string_view s);

// Parses a duration: a non-negative integer followed by a unit: "ms", "s", "m", "h" or "d"
// ("250ms", "5s", "30m", "2h", "5d"). Returns milliseconds, nullopt if malformed.
std::optional<int64_t> parse_duration_ms(std::string_view s);

}  // namespace herald
