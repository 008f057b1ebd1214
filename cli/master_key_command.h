#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"

namespace herald {

class Database;

// Opens config.db_path under its master key: HERALD_MASTER_KEY, else the key file, which the
// first start creates. A rotation stopped between its commit and the rename of
// "<key file>.new" into place is completed; a "<key file>.new" left by one that never
// committed is removed. Returns nullptr with a one-line reason in *error (the key does not
// match the database, the key file is missing, unsafe or malformed...). Lines worth showing
// the operator go to *notes. `exclusive`: see DatabaseOptions::exclusive.
std::unique_ptr<Database> open_with_master_key(const Config& config, int max_connections,
                                               std::vector<std::string>* notes, std::string* error,
                                               bool exclusive = false);

// `herald master-key <args>`: rotate. Returns the exit status.
int master_key_command(const std::vector<std::string>& args, const EnvLookup& env);

}  // namespace herald
