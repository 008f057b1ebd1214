#pragma once

// For the tests of the "sqlite" suite, which look at the SQLite backend itself.

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "db/database.h"
#include "db/sqlite/connection.h"

namespace herald::test {

// The SQLite database at `path` (created if missing), whatever store the run is for.
inline std::unique_ptr<Database> open_sqlite(const std::string& path, int max_connections = 4,
                                             std::shared_ptr<const SecretBox> box = nullptr) {
  return open_database(path, DatabaseOptions{max_connections, std::move(box)});
}

// The integer in the first column of the first row `sql` yields.
inline int64_t scalar(sqlite::Connection& c, const std::string& sql) {
  auto st = c.prepare(sql);
  REQUIRE(st.step());
  return st.get_int(0);
}

}  // namespace herald::test
