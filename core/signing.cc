#include "core/signing.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <stdexcept>

#include "core/encoding.h"

namespace herald {
namespace {

constexpr size_t kGeneratedKeyBytes = 32;
constexpr size_t kMinKeyBytes = 24;
constexpr size_t kMaxKeyBytes = 64;
constexpr size_t kEd25519Bytes = 32;

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

Pkey ed25519_private(std::string_view seed) {
  if (seed.size() != kEd25519Bytes) throw std::invalid_argument("an Ed25519 seed is 32 bytes");
  Pkey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, bytes_of(seed), seed.size()));
  if (!key) throw std::runtime_error("cannot load an Ed25519 key");
  return key;
}

}  // namespace

SigningKey generate_key(KeyKind kind) {
  if (kind == KeyKind::kEd25519) return SigningKey{kind, random_bytes(kEd25519Bytes)};
  return SigningKey{kind, random_bytes(kGeneratedKeyBytes)};
}

std::optional<SigningKey> parse_secret(std::string_view text, std::string* problem) {
  if (text.starts_with(kSecretPrefix)) {
    if (auto key = decode_secret(text)) return SigningKey{KeyKind::kHmac, std::move(*key)};
    *problem = "must be whsec_ followed by base64 of 24 to 64 bytes";
    return std::nullopt;
  }
  if (text.starts_with(kPrivateKeyPrefix)) {
    auto raw = base64_decode(text.substr(kPrivateKeyPrefix.size()));
    if (!raw || raw->size() != 2 * kEd25519Bytes) {
      *problem = "a whsk_ key is base64 of 64 bytes: the Ed25519 seed, then its public key";
      return std::nullopt;
    }
    std::string seed = raw->substr(0, kEd25519Bytes);
    if (!constant_time_equal(ed25519_public_key(seed), std::string_view(*raw).substr(32))) {
      *problem = "the public key in this whsk_ key does not belong to its private seed";
      return std::nullopt;
    }
    return SigningKey{KeyKind::kEd25519, std::move(seed)};
  }
  *problem = "must be a whsec_ secret (HMAC) or a whsk_ Ed25519 private key";
  return std::nullopt;
}

std::optional<std::string> secret_text_problem(SignatureScheme scheme, const SigningKey& key,
                                               std::string_view text) {
  const bool keyed_by_text =
      scheme == SignatureScheme::kStripe || scheme == SignatureScheme::kGithub;
  if (!keyed_by_text || key.kind != KeyKind::kHmac || shown_secret(key) == text)
    return std::nullopt;
  return std::string(scheme_name(scheme)) +
         " keys HMAC with the secret's text, so write it in canonical padded base64";
}

std::string shown_secret(const SigningKey& key) {
  if (key.kind == KeyKind::kEd25519) {
    return std::string(kPublicKeyPrefix) + base64_encode(ed25519_public_key(key.bytes));
  }
  return std::string(kSecretPrefix) + base64_encode(key.bytes);
}

std::string ed25519_public_key(std::string_view seed) {
  Pkey key = ed25519_private(seed);
  std::string out(kEd25519Bytes, '\0');
  size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(out.data()), &len) !=
          1 ||
      len != kEd25519Bytes) {
    throw std::runtime_error("cannot derive an Ed25519 public key");
  }
  return out;
}

Ed25519Key::Ed25519Key(std::string_view seed) : key_(ed25519_private(seed).release(), PkeyFree{}) {}

std::string Ed25519Key::sign(std::string_view data) const {
  MdCtx ctx(EVP_MD_CTX_new());
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, bytes_of(data),
                     data.size()) != 1) {
    throw std::runtime_error("Ed25519 signing failed");
  }
  sig.resize(len);
  return sig;
}

std::string ed25519_sign(std::string_view seed, std::string_view data) {
  return Ed25519Key(seed).sign(data);
}

bool ed25519_verify(std::string_view public_key, std::string_view data,
                    std::string_view signature) {
  if (public_key.size() != kEd25519Bytes) return false;
  Pkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes_of(public_key),
                                       public_key.size()));
  MdCtx ctx(EVP_MD_CTX_new());
  if (!key || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), bytes_of(signature), signature.size(), bytes_of(data),
                          data.size()) == 1;
}

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

std::string standard_signed_content(std::string_view msg_id, int64_t timestamp_s,
                                    std::string_view body) {
  std::string to_sign;
  to_sign.reserve(msg_id.size() + body.size() + 24);
  to_sign.append(msg_id);
  to_sign += '.';
  to_sign += std::to_string(timestamp_s);
  to_sign += '.';
  to_sign.append(body);
  return to_sign;
}

std::string sign_v1(std::string_view key, std::string_view msg_id, int64_t timestamp_s,
                    std::string_view body) {
  return "v1," +
         base64_encode(hmac_sha256(key, standard_signed_content(msg_id, timestamp_s, body)));
}

std::string sign_v1a(const Ed25519Key& key, std::string_view msg_id, int64_t timestamp_s,
                     std::string_view body) {
  return "v1a," + base64_encode(key.sign(standard_signed_content(msg_id, timestamp_s, body)));
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
