#pragma once

#include <optional>
#include <string>

namespace herald {

// PEM certificates as users hand them to herald (HERALD_CA_FILE, and later endpoint client
// certificates): parsed with OpenSSL, never trusted blindly.

// nullopt if `path` is a readable file holding at least one PEM certificate and nothing that
// fails to parse as one; else a sentence saying what is wrong.
std::optional<std::string> ca_bundle_problem(const std::string& path);

}  // namespace herald
