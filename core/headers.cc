#include "core/headers.h"

#include <string>

#include "core/ascii.h"

namespace herald {

bool is_sensitive_header(std::string_view name) {
  const std::string lower = ascii_lower(name);
  return lower == "authorization" || lower == "proxy-authorization" || lower == "cookie" ||
         lower.find("secret") != std::string::npos || lower.find("token") != std::string::npos ||
         lower.find("password") != std::string::npos ||
         lower.find("api-key") != std::string::npos || lower.find("apikey") != std::string::npos;
}

}  // namespace herald
