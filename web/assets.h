#pragma once

#include <string_view>
#include <vector>

namespace herald {

// A file of the portal, embedded in the binary at build time.
struct EmbeddedAsset {
  std::string_view name;  // file name under web/assets, e.g. "portal.js"
  std::string_view body;
};

// Every file of web/assets, in the order web/CMakeLists.txt lists them. Generated.
const std::vector<EmbeddedAsset>& portal_assets();

}  // namespace herald
