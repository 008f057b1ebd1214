#include "tests/support/store.h"

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <random>
#include <stdexcept>

#include "core/encoding.h"

namespace herald::test {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// The server's URI with its database name replaced by `name`.
std::string with_database(const std::string& uri, const std::string& name) {
  const size_t scheme = uri.find("://");
  if (scheme == std::string::npos) throw std::runtime_error("HERALD_TEST_PG_URI is not a URI");
  const size_t path = uri.find('/', scheme + 3);
  const size_t query = uri.find('?', scheme + 3);
  const std::string authority = uri.substr(
      0, path != std::string::npos && (query == std::string::npos || path < query) ? path : query);
  const std::string rest = query == std::string::npos ? "" : uri.substr(query);
  return authority + "/" + name + rest;
}

// Runs `sql` on the server's maintenance database; throws with the server's message.
void admin(const std::string& sql) {
  const std::string uri = env("HERALD_TEST_PG_URI");
  PGconn* c = PQconnectdb(uri.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("cannot reach the test PostgreSQL server (" + uri + "): " + msg);
  }
  PGresult* r = PQexec(c, sql.c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string msg = ok ? "" : PQerrorMessage(c);
  PQclear(r);
  PQfinish(c);
  if (!ok) throw std::runtime_error(sql + ": " + msg);
}

}  // namespace

StoreKind store_kind() {
  const std::string s = env("HERALD_TEST_STORE");
  if (s.empty() || s == "sqlite") return StoreKind::kSqlite;
  if (s == "postgres") return StoreKind::kPostgres;
  throw std::runtime_error("HERALD_TEST_STORE must be sqlite or postgres, not '" + s + "'");
}

const char* store_name() {
  return store_kind() == StoreKind::kPostgres ? "postgres" : "sqlite";
}

TestStore::TestStore() {
  if (store_kind() == StoreKind::kSqlite) {
    location_ = dir_.file("herald.db");
    return;
  }
  const std::string uri = env("HERALD_TEST_PG_URI");
  REQUIRE_MESSAGE(!uri.empty(),
                  "HERALD_TEST_STORE=postgres needs HERALD_TEST_PG_URI (scripts/test.sh and "
                  "ctest start a throwaway server and set it)");
  pg_name_ = "herald_t_" + hex_encode(random_bytes(6));
  admin("CREATE DATABASE " + pg_name_);
  location_ = with_database(uri, pg_name_);
}

TestStore::~TestStore() {
  if (pg_name_.empty()) return;
  try {
    admin("DROP DATABASE IF EXISTS " + pg_name_ + " WITH (FORCE)");
  } catch (const std::exception& e) {
    MESSAGE("could not drop the test database: " << e.what());
  }
}

std::unique_ptr<Database> TestStore::open(int max_connections,
                                          std::shared_ptr<const SecretBox> box) const {
  return open_database(location_, DatabaseOptions{max_connections, std::move(box)});
}

}  // namespace herald::test
