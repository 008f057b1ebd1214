// Request bodies as the API reads them: JSON parsing, field validation, and the raw payload
// cut out of the body. Property: whenever the body parses and has a payload, raw_member finds
// it and it parses to the same value.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/errors.h"
#include "api/json_mapping.h"
#include "api/raw_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto raw = herald::raw_member(text, "payload");  // must never crash, even on junk
  auto body = herald::JsonIn::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return 0;
  if (body.contains("payload")) {
    if (!raw) __builtin_trap();
    auto again = herald::JsonIn::parse(*raw, nullptr, false);
    if (again.is_discarded() || again != body["payload"]) __builtin_trap();
  }
  try {
    herald::BodyReader r(body);
    r.opt_string("name");
    r.req_string("eventType");
    r.opt_int("throttleRate", 1, 1000000);
    r.opt_bool("disabled");
    r.opt_string_list("eventTypes", 256, 256);
    r.opt_string_map("headers", 32, 4096);
    if (auto url = r.opt_string("url", 4096)) herald::url_problem(*url);
    if (auto uid = r.opt_string("uid")) herald::valid_uid(*uid);
    r.finish();
  } catch (const herald::ApiError&) {
    // Rejected input is the expected outcome for most bodies.
  }
  return 0;
}
