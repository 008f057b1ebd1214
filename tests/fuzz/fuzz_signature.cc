// Secrets, base64 and signature headers as a receiver or herald reads them. Properties: base64
// round-trips; a header always verifies when it contains the right signature, whatever else
// it holds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/encoding.h"
#include "core/signing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  herald::decode_secret(text);
  if (auto bytes = herald::base64_decode(text)) {
    if (herald::base64_decode(herald::base64_encode(*bytes)) != bytes) __builtin_trap();
  }
  const std::string key = "0123456789abcdef01234567";
  const std::string body = R"({"a":1})";
  herald::verify_signature_header({key}, "msg_x", 1700000000, body, text);
  std::string with_good = text + " " + herald::sign_v1(key, "msg_x", 1700000000, body);
  if (!herald::verify_signature_header({key}, "msg_x", 1700000000, body, with_good)) {
    __builtin_trap();
  }
  return 0;
}
