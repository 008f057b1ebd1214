#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/retry.h"
#include "core/types.h"

namespace herald {

// Settings of `herald serve`. Each has a flag and an environment variable; a flag wins.
struct Config {
  std::string listen_host = "127.0.0.1";  // --listen / HERALD_LISTEN (host:port)
  int listen_port = 8071;
  std::string db_path = "./herald.db";     // --db / HERALD_DB (a path or a postgresql:// URI)
  std::optional<int> db_pool;              // HERALD_DB_POOL (default: default_db_pool())
  std::optional<std::string> admin_token;  // --admin-token / HERALD_ADMIN_TOKEN
  std::optional<std::string> master_key;   // HERALD_MASTER_KEY, 32 raw bytes (base64 there)
  std::string master_key_file;             // HERALD_MASTER_KEY_FILE ("" until parsed: db + ".key")
  RetryPolicy retry = RetryPolicy::standard();   // HERALD_RETRY_SCHEDULE
  int64_t request_timeout_ms = 15000;            // HERALD_REQUEST_TIMEOUT
  int64_t connect_timeout_ms = 5000;             // HERALD_CONNECT_TIMEOUT
  std::vector<std::string> allow_private_cidrs;  // HERALD_ALLOW_PRIVATE_CIDRS
  bool https_only = false;                       // HERALD_HTTPS_ONLY: endpoint URLs must be https
  std::string ca_file;  // HERALD_CA_FILE: PEM CAs trusted for endpoints ("": the system's)
  size_t max_payload_bytes = 1 << 20;       // HERALD_MAX_PAYLOAD_BYTES
  size_t max_connections = 10000;           // HERALD_MAX_CONNECTIONS: API connections open at once
  size_t max_connections_per_client = 256;  // HERALD_MAX_CONNECTIONS_PER_CLIENT: from one address
  uint64_t disk_reserve_bytes = 16 << 20;   // HERALD_DISK_RESERVE_BYTES (SQLite)
  uint64_t sqlite_memory_bytes = 32 << 20;  // HERALD_SQLITE_MEMORY_BYTES (0: no bound)
  int max_in_flight = 512;                  // HERALD_MAX_IN_FLIGHT
  int endpoint_concurrency = 32;            // HERALD_ENDPOINT_CONCURRENCY
  int64_t lease_ms = 60000;                 // HERALD_LEASE (must exceed the request timeout)
  std::string public_url;                   // HERALD_PUBLIC_URL, base of portal links
  std::string log_level = "info";           // HERALD_LOG_LEVEL
  int64_t disable_after_ms = 5LL * 24 * 3600 * 1000;  // HERALD_DISABLE_AFTER
  int64_t retention_ms = 90LL * 24 * 3600 * 1000;     // HERALD_RETENTION
  int64_t message_retention_ms = 0;  // HERALD_MESSAGE_RETENTION (0 until parsed: twice retention)
  int64_t shutdown_timeout_ms = 10000;         // HERALD_SHUTDOWN_TIMEOUT
  std::string operator_url;                    // HERALD_OPERATOR_URL ("" = none)
  std::optional<std::string> operator_secret;  // HERALD_OPERATOR_SECRET (whsec_/whsk_)
  // HERALD_OPERATOR_SIGNATURE_SCHEME; unset: ed25519 for a whsk_ secret, else standard.
  std::optional<SignatureScheme> operator_scheme;
};

// True if `location` names a PostgreSQL database (a postgresql:// or postgres:// URI); anything
// else is the path of a SQLite file.
bool is_postgres_uri(std::string_view location);

// `location` as messages may show it: a path as is, a URI without its password.
std::string describe_location(std::string_view location);

// Pooled connections per process when HERALD_DB_POOL is unset: SQLite serves many readers
// cheaply; a PostgreSQL server is shared by every node, so each takes fewer.
int default_db_pool(const Config& c);

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// The process environment.
EnvLookup process_env();

// Builds the serve configuration from `args` (the words after "serve") and `env`. On bad input
// returns nullopt with a one-line message naming the flag or variable in *error.
std::optional<Config> parse_serve_config(const std::vector<std::string>& args, const EnvLookup& env,
                                         std::string* error);

// Text of `herald serve --help`.
std::string serve_help();

}  // namespace herald
