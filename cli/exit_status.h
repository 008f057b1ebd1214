#pragma once

// How a herald command that fails ends: one line on stderr, "herald: <message>", and an exit
// status saying which kind of failure it was (docs/CONFIGURATION.md, "Exit status").

#include <iostream>
#include <string>

namespace herald {

// The command ran and could not do what was asked (no such token or application, a failed
// copy or rotation). Nothing it could not finish was left changed.
inline constexpr int kExitFailed = 1;
// The command could not start: bad usage or configuration, a database it cannot open (in use,
// unreachable, sealed with another master key), an address it cannot listen on.
inline constexpr int kExitCannotStart = 2;

inline int fail(const std::string& message, int status = kExitFailed) {
  std::cerr << "herald: " << message << "\n";
  return status;
}

}  // namespace herald
