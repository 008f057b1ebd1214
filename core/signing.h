#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

// An endpoint signing secret as shown to users: "whsec_" + base64(key bytes).
inline constexpr std::string_view kSecretPrefix = "whsec_";

// A new secret with 32 random key bytes, in "whsec_..." form.
std::string generate_secret();

// Returns the raw key bytes of a "whsec_..." secret, or nullopt if it is not "whsec_" followed
// by base64 of 24 to 64 bytes.
std::optional<std::string> decode_secret(std::string_view secret);

// HMAC-SHA256(key, data), 32 raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view data);

// One Standard Webhooks signature: "v1," + base64(HMAC-SHA256(key, id + "." + ts + "." + body)).
std::string sign_v1(std::string_view key, std::string_view msg_id, int64_t timestamp_s,
                    std::string_view body);

// The webhook-signature header value: one v1 signature per key, space-separated, in order.
std::string signature_header(const std::vector<std::string>& keys, std::string_view msg_id,
                             int64_t timestamp_s, std::string_view body);

// True if any v1 entry of a webhook-signature header value ("v1,<b64> v1,<b64> ...") is the
// signature of (msg_id, timestamp_s, body) under one of `keys`; compared in constant time.
// Entries of other versions, and malformed ones, are ignored.
bool verify_signature_header(const std::vector<std::string>& keys, std::string_view msg_id,
                             int64_t timestamp_s, std::string_view body, std::string_view header);

}  // namespace herald
