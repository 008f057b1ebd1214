#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.h"

struct evp_pkey_st;

namespace herald {

// An endpoint signing secret as shown to users: "whsec_" + base64(key bytes).
inline constexpr std::string_view kSecretPrefix = "whsec_";

// An Ed25519 private key as users supply it: "whsk_" + base64(32-byte seed || 32-byte public
// key); and the public key as herald shows it: "whpk_" + base64(32-byte public key).
inline constexpr std::string_view kPrivateKeyPrefix = "whsk_";
inline constexpr std::string_view kPublicKeyPrefix = "whpk_";

// A new secret with 32 random key bytes, in "whsec_..." form.
std::string generate_secret();

// Returns the raw key bytes of a "whsec_..." secret, or nullopt if it is not "whsec_" followed
// by base64 of 24 to 64 bytes.
std::optional<std::string> decode_secret(std::string_view secret);

// A new random key of `kind`: 32 HMAC key bytes, or an Ed25519 seed.
SigningKey generate_key(KeyKind kind);

// The key a whsec_ or whsk_ secret holds. nullopt, with `problem` set to a sentence saying
// what is wrong, for anything else (a whsk_ whose public half does not belong to its seed
// included).
std::optional<SigningKey> parse_secret(std::string_view text, std::string* problem);

// What herald shows of a key: "whsec_..." for an HMAC key (which is the secret itself), the
// "whpk_..." public key for an Ed25519 one.
std::string shown_secret(const SigningKey& key);

// Stripe's and GitHub's receivers key their HMAC with the secret's text, not the bytes it
// encodes, so an HMAC key given for those schemes must be written exactly as shown_secret()
// shows it back (canonical padded base64), or the receiver's copy would not verify. Returns a
// sentence saying so ("stripe keys HMAC with ...") when `text` is not; nullopt when it is, or
// when `scheme` keys by the bytes.
std::optional<std::string> secret_text_problem(SignatureScheme scheme, const SigningKey& key,
                                               std::string_view text);

// The 32-byte Ed25519 public key of a 32-byte seed. Throws std::invalid_argument for a seed
// of another length.
std::string ed25519_public_key(std::string_view seed);

// An Ed25519 private key, loaded once to sign many times. Copies share the key.
class Ed25519Key {
 public:
  // Throws std::invalid_argument for a seed that is not 32 bytes.
  explicit Ed25519Key(std::string_view seed);
  // The 64-byte signature of `data`.
  std::string sign(std::string_view data) const;

 private:
  std::shared_ptr<evp_pkey_st> key_;
};

// The 64-byte Ed25519 signature of `data` under the key of `seed`.
std::string ed25519_sign(std::string_view seed, std::string_view data);

// True if `signature` is the Ed25519 signature of `data` under the 32-byte `public_key`.
bool ed25519_verify(std::string_view public_key, std::string_view data, std::string_view signature);

// HMAC-SHA256(key, data), 32 raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view data);

// One Standard Webhooks signature: "v1," + base64(HMAC-SHA256(key, id + "." + ts + "." + body)).
std::string sign_v1(std::string_view key, std::string_view msg_id, int64_t timestamp_s,
                    std::string_view body);

// What a Standard Webhooks signature covers: id + "." + ts + "." + body.
std::string standard_signed_content(std::string_view msg_id, int64_t timestamp_s,
                                    std::string_view body);

// One Standard Webhooks asymmetric signature: "v1a," + base64(Ed25519 signature of
// id + "." + ts + "." + body).
std::string sign_v1a(const Ed25519Key& key, std::string_view msg_id, int64_t timestamp_s,
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
