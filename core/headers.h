#pragma once

#include <string_view>

namespace herald {

// True for a request header whose value must never be shown back or stored in the clear:
// authorization, proxy-authorization, cookie, and names containing "secret", "token",
// "password", "api-key" or "apikey" (any case).
bool is_sensitive_header(std::string_view name);

// What herald shows and records instead of a sensitive header's value.
inline constexpr std::string_view kMaskedHeaderValue = "********";

// The User-Agent of every delivery.
inline constexpr const char* kUserAgent = "herald/0.1";

}  // namespace herald
