#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace herald {

// Standard base64 (RFC 4648, with padding).
std::string base64_encode(std::string_view bytes);
// Decodes standard base64; padding optional. Returns nullopt on invalid input.
std::optional<std::string> base64_decode(std::string_view text);

// Lowercase hex of bytes.
std::string hex_encode(std::string_view bytes);
// The value of one hex digit (either case); -1 if `c` is not one.
int hex_digit_value(char c);

// `n` bytes from a cryptographically secure generator (OpenSSL RAND_bytes).
std::string random_bytes(size_t n);

// SHA-256 digest (32 raw bytes).
std::string sha256(std::string_view data);

// The offset of the first byte of `text` that is not part of a well-formed UTF-8 character
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF); nullopt if all are.
std::optional<size_t> first_invalid_utf8(std::string_view text);

// Constant-time comparison of two byte strings (different lengths compare unequal).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace herald
