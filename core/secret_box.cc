#include "core/secret_box.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <climits>
#include <memory>
#include <stdexcept>

#include "core/encoding.h"

namespace herald {
namespace {

constexpr unsigned char kVersion = 1;
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* bytes(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

int length(std::string_view s) {
  if (s.size() > INT_MAX) throw std::length_error("secret too large to seal");
  return static_cast<int>(s.size());
}

// Authenticates the version byte, then the caller's context.
bool add_aad(EVP_CIPHER_CTX* ctx, std::string_view context, bool encrypt) {
  const auto update = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate;
  int n = 0;
  if (update(ctx, nullptr, &n, &kVersion, 1) != 1) return false;
  return context.empty() || update(ctx, nullptr, &n, bytes(context), length(context)) == 1;
}

}  // namespace

SecretBox::SecretBox(std::string_view key) : key_(key) {
  if (key_.size() != kKeySize) {
    OPENSSL_cleanse(key_.data(), key_.size());
    throw std::invalid_argument("a SecretBox key must be 32 bytes");
  }
}

SecretBox::~SecretBox() {
  OPENSSL_cleanse(key_.data(), key_.size());
}

std::string SecretBox::seal(std::string_view plaintext, std::string_view context) const {
  std::string out(kOverhead + plaintext.size(), '\0');
  out[0] = static_cast<char>(kVersion);
  const std::string nonce = random_bytes(kNonceSize);
  out.replace(1, kNonceSize, nonce);
  unsigned char* cipher = bytes(out) + 1 + kNonceSize;
  unsigned char* tag = cipher + plaintext.size();

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int n = 0, final_n = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key_), bytes(nonce)) != 1 ||
      !add_aad(ctx.get(), context, true) ||
      EVP_EncryptUpdate(ctx.get(), cipher, &n, bytes(plaintext), length(plaintext)) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), cipher + n, &final_n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, tag) != 1) {
    throw std::runtime_error("AES-256-GCM encryption failed");
  }
  return out;
}

std::optional<std::string> SecretBox::open(std::string_view sealed,
                                           std::string_view context) const {
  if (sealed.size() < kOverhead || static_cast<unsigned char>(sealed[0]) != kVersion) {
    return std::nullopt;
  }
  const std::string_view nonce = sealed.substr(1, kNonceSize);
  const std::string_view cipher = sealed.substr(1 + kNonceSize, sealed.size() - kOverhead);
  std::string tag(sealed.substr(sealed.size() - kTagSize));
  std::string out(cipher.size(), '\0');

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) throw std::runtime_error("AES-256-GCM: out of memory");
  int n = 0, final_n = 0;
  const bool ok =
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) == 1 &&
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key_), bytes(nonce)) == 1 &&
      add_aad(ctx.get(), context, false) &&
      EVP_DecryptUpdate(ctx.get(), bytes(out), &n, bytes(cipher), length(cipher)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), bytes(out) + n, &final_n) == 1;
  if (!ok) {
    OPENSSL_cleanse(out.data(), out.size());
    return std::nullopt;
  }
  return out;
}

}  // namespace herald
