// The small text parsers behind the API and the configuration: URLs, header names, uids,
// RFC 3339 times, durations. Property: a parsed time formats and parses back to itself.
#include <cstddef>
#include <cstdint>
#include <string>

#include "api/json_mapping.h"
#include "core/time_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  herald::url_problem(text);
  herald::valid_uid(text);
  herald::valid_name(text);
  size_t colon = text.find(':');
  if (colon != std::string::npos) {
    herald::header_problem(text.substr(0, colon), text.substr(colon + 1));
  }
  herald::parse_duration_ms(text);
  if (auto t = herald::parse_rfc3339(text)) {
    auto back = herald::parse_rfc3339(herald::format_rfc3339(*t));
    if (!back || *back != *t) __builtin_trap();
  }
  return 0;
}
