#pragma once

#include <memory>
#include <string>

#include "db/database.h"
#include "tests/support/temp_dir.h"

namespace herald::test {

// Which store the tests run against: HERALD_TEST_STORE=postgres (then HERALD_TEST_PG_URI names
// a PostgreSQL server where the tests may create and drop databases) or sqlite (the default).
enum class StoreKind { kSqlite, kPostgres };
StoreKind store_kind();
const char* store_name();  // "sqlite" or "postgres"

// A fresh, empty database of the store under test: a file in a temp directory, or a database
// created on the PostgreSQL server. Dropped when destroyed (after every Database on it).
class TestStore {
 public:
  TestStore();
  ~TestStore();
  TestStore(const TestStore&) = delete;
  TestStore& operator=(const TestStore&) = delete;

  // What herald's --db would be given: the file's path, or the database's URI.
  const std::string& location() const { return location_; }
  // Opens it (applying migrations the first time).
  std::unique_ptr<Database> open(int max_connections = 4,
                                 std::shared_ptr<const SecretBox> box = nullptr) const;
  // A directory for anything else the test writes (key files, a second store's file).
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  std::string location_;
  std::string pg_name_;  // the database created on the server; "" for SQLite
};

}  // namespace herald::test
