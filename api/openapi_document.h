#pragma once

#include <string_view>

namespace herald {

// herald's API as an OpenAPI 3.1 document: api/openapi.json byte for byte, compiled in (the
// build generates its definition from the file).
std::string_view openapi_document();

}  // namespace herald
