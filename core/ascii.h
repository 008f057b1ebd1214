#pragma once

#include <string>
#include <string_view>

namespace herald {

// ASCII case only, whatever the locale: header names, URL schemes, HTTP auth schemes and
// configuration words are ASCII by their grammars.
inline char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

// True if `s` begins with `prefix`, ignoring ASCII case.
inline bool starts_with_ascii_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (ascii_lower(s[i]) != ascii_lower(prefix[i])) return false;
  }
  return true;
}

// True if `a` and `b` are equal, ignoring ASCII case.
inline bool equals_ascii_ci(std::string_view a, std::string_view b) {
  return a.size() == b.size() && starts_with_ascii_ci(a, b);
}

}  // namespace herald
