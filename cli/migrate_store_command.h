#pragma once

#include <string>
#include <vector>

#include "core/config.h"

namespace herald {

// `herald migrate-store --from A --to B`: copies a stopped herald's data from one store to
// another (SQLite to PostgreSQL, typically), resumably, and verifies it by counts. Returns the
// exit status.
int migrate_store_command(const std::vector<std::string>& args, const EnvLookup& env);

}  // namespace herald
