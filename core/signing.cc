#include "core/signing.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>

#include "core/encoding.h"

namespace herald {
namespace {

constexpr size_t kGeneratedKeyBytes = 32;
constexpr size_t kMinKeyBytes = 24;
constexpr size_t kMaxKeyBytes = 64;

}  // namespace

std::string generate_secret() {
  return std::string(kSecretPrefix) + base64_encode(random_bytes(kGeneratedKeyBytes));
}

std::optional<std::string> decode_secret(std::string_view secret) {
  if (!secret.starts_with(kSecretPrefix)) return std::nullopt;
  auto key = base64_decode(secret.substr(kSecretPrefix.size()));
  if (!key || key->size() < kMinKeyBytes || key->size() > kMaxKeyBytes) return std::nullopt;
  return key;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned int len = 0;
  // HMAC() rejects a null key pointer even with length 0.
  static constexpr char kEmpty = 0;
  const void* key_ptr = key.empty() ? &kEmpty : key.data();
  if (HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(),
           reinterpret_cast<unsigned char*>(out.data()), &len) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  out.resize(len);
  return out;
}

std::string sign_v1(std::string_view key, std::string_view msg_id, int64_t timestamp_s,
                    std::string_view body) {
  std::string to_sign;
  to_sign.reserve(msg_id.size() + body.size() + 24);
  to_sign.append(msg_id);
  to_sign += '.';
  to_sign += std::to_string(timestamp_s);
  to_sign += '.';
  to_sign.append(body);
  return "v1," + base64_encode(hmac_sha256(key, to_sign));
}

std::string signature_header(const std::vector<std::string>& keys, std::string_view msg_id,
                             int64_t timestamp_s, std::string_view body) {
  std::string out;
  for (const auto& key : keys) {
    if (!out.empty()) out += ' ';
    out += sign_v1(key, msg_id, timestamp_s, body);
  }
  return out;
}

bool verify_signature_header(const std::vector<std::string>& keys, std::string_view msg_id,
                             int64_t timestamp_s, std::string_view body, std::string_view header) {
  std::vector<std::string> expected;
  expected.reserve(keys.size());
  for (const auto& key : keys) expected.push_back(sign_v1(key, msg_id, timestamp_s, body));
  bool ok = false;
  size_t start = 0;
  while (start < header.size()) {
    size_t end = header.find(' ', start);
    if (end == std::string_view::npos) end = header.size();
    std::string_view entry = header.substr(start, end - start);
    if (entry.starts_with("v1,")) {
      for (const auto& e : expected) ok |= constant_time_equal(entry, e);
    }
    start = end + 1;
  }
  return ok;
}

}  // namespace herald
