#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace herald {

// Authenticated encryption of small secrets at rest: AES-256-GCM under one 32-byte key.
// A sealed value is a version byte (1), a 12-byte random nonce, the ciphertext and the
// 16-byte tag. `context` is authenticated but not stored: a value opens only with the
// context it was sealed with (e.g. the id of the row it belongs to). Thread-safe.
class SecretBox {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kOverhead = 1 + 12 + 16;

  // REQUIRES: key.size() == kKeySize (throws std::invalid_argument otherwise).
  explicit SecretBox(std::string_view key);
  ~SecretBox();  // wipes the key
  SecretBox(const SecretBox&) = delete;
  SecretBox& operator=(const SecretBox&) = delete;

  // A fresh nonce on every call, so sealing the same plaintext twice differs.
  std::string seal(std::string_view plaintext, std::string_view context = {}) const;
  // The plaintext, or nullopt if `sealed` was altered, sealed under another key or
  // context, or is not a sealed value at all.
  std::optional<std::string> open(std::string_view sealed, std::string_view context = {}) const;

 private:
  std::string key_;
};

}  // namespace herald
