#pragma once

#include <optional>
#include <string_view>

namespace herald {

// The exact source text of member `key` of the top-level JSON object in `text` (the last one,
// if the key repeats), or nullopt when there is none.
// REQUIRES: `text` is valid JSON (already parsed successfully); otherwise the result is
// unspecified but never reads outside `text`.
std::optional<std::string_view> raw_member(std::string_view text, std::string_view key);

}  // namespace herald
