#include "core/ids.h"

#include <mutex>

#include "core/encoding.h"

namespace herald {
namespace {

__extension__ typedef unsigned __int128 U128;

constexpr std::string_view kBase62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr size_t kEncodedLen = 22;  // 62^22 > 2^128
constexpr int kRandomBits = 80;
constexpr int kTimeBits = 48;
constexpr TimeMs kMaxTime = (TimeMs{1} << kTimeBits) - 1;

// The time part of an id: `t` clamped to the 48 bits an id has room for.
U128 time_part(TimeMs t) {
  if (t < 0) t = 0;
  if (t > kMaxTime) t = kMaxTime;
  return static_cast<U128>(t) << kRandomBits;
}

std::string encode(U128 v) {
  std::string out(kEncodedLen, '0');
  for (size_t i = kEncodedLen; i-- > 0;) {
    out[i] = kBase62[static_cast<size_t>(v % 62)];
    v /= 62;
  }
  return out;
}

int base62_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  if (c >= 'a' && c <= 'z') return c - 'a' + 36;
  return -1;
}

std::string with_prefix(std::string_view prefix, U128 v) {
  std::string out;
  out.reserve(prefix.size() + 1 + kEncodedLen);
  out.append(prefix);
  out += '_';
  out += encode(v);
  return out;
}

std::mutex g_last_mutex;
U128 g_last = 0;  // GUARDED_BY(g_last_mutex): the largest value handed out so far

}  // namespace

std::string new_id(std::string_view prefix, TimeMs now_ms) {
  std::string rnd = random_bytes(kRandomBits / 8);
  U128 v = time_part(now_ms);
  for (size_t i = 0; i < rnd.size(); ++i) {
    v |= static_cast<U128>(static_cast<unsigned char>(rnd[i])) << (8 * (rnd.size() - 1 - i));
  }
  {
    std::lock_guard<std::mutex> lock(g_last_mutex);
    if (v <= g_last) v = g_last + 1;
    g_last = v;
  }
  return with_prefix(prefix, v);
}

bool is_id_with_prefix(std::string_view id, std::string_view prefix) {
  if (id.size() != prefix.size() + 1 + kEncodedLen) return false;
  if (!id.starts_with(prefix) || id[prefix.size()] != '_') return false;
  // Every char must be base62 and the value must fit in 128 bits.
  const U128 max = ~U128{0};
  U128 v = 0;
  for (char c : id.substr(prefix.size() + 1)) {
    int d = base62_value(c);
    if (d < 0) return false;
    if (v > (max - static_cast<U128>(d)) / 62) return false;
    v = v * 62 + static_cast<U128>(d);
  }
  return true;
}

std::optional<TimeMs> id_time(std::string_view id) {
  auto sep = id.rfind('_');
  if (sep == std::string_view::npos || id.size() - sep - 1 != kEncodedLen) return std::nullopt;
  if (!is_id_with_prefix(id, id.substr(0, sep))) return std::nullopt;
  U128 v = 0;
  for (char c : id.substr(sep + 1)) v = v * 62 + static_cast<U128>(base62_value(c));
  return static_cast<TimeMs>(v >> kRandomBits);
}

std::string id_lower_bound(std::string_view prefix, TimeMs t) {
  return with_prefix(prefix, time_part(t));
}

}  // namespace herald
