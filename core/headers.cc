#include "core/headers.h"

#include <string>

namespace herald {

bool is_sensitive_header(std::string_view name) {
  std::string lower;
  lower.reserve(name.size());
  for (char c : name) {
    lower += c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return lower == "authorization" || lower == "proxy-authorization" || lower == "cookie" ||
         lower.find("secret") != std::string::npos || lower.find("token") != std::string::npos ||
         lower.find("password") != std::string::npos ||
         lower.find("api-key") != std::string::npos || lower.find("apikey") != std::string::npos;
}

}  // namespace herald
