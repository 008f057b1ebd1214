#pragma once

#include <string>
#include <vector>

#include "core/clock.h"
#include "core/config.h"

namespace herald {

// `herald token <args>`: create, list, revoke API tokens. Returns the exit status.
int token_command(const std::vector<std::string>& args, const EnvLookup& env, Clock& clock);

}  // namespace herald
