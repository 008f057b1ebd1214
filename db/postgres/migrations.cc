#include "db/postgres/migrations.h"

#include <array>

#include "db/postgres/connection.h"

namespace herald::pg {
namespace {

// The advisory lock that serializes migrations across processes (an arbitrary constant).
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7252315, 1)";

// Each entry moves the schema one version forward. Never edit a shipped entry: append.
// Times are milliseconds since the epoch (BIGINT), as in the SQLite store; small JSON values
// (lists, maps) are TEXT holding JSON, as there; payloads are TEXT so their bytes are kept.
// Ids, uids and names compare byte by byte (COLLATE "C"), as in SQLite, whatever the
// database's locale: ids sort by creation time only in that order.
constexpr std::array kMigrations = {
    // 1: everything SQLite's migrations 1 to 6 hold, plus what sharing the queue needs: the
    // claim that leases a delivery, the in-flight index behind cluster-wide concurrency caps,
    // and the token buckets behind cluster-wide throttleRate.
    R"sql(
CREATE TABLE applications (
  id            TEXT COLLATE "C" PRIMARY KEY,
  uid           TEXT COLLATE "C" UNIQUE,
  name          TEXT COLLATE "C" NOT NULL,
  throttle_rate INTEGER,
  metadata      TEXT NOT NULL DEFAULT '{}',
  created_at    BIGINT NOT NULL,
  updated_at    BIGINT NOT NULL,
  -- bumped by every write to the application's endpoints (Application::endpoints_version)
  endpoints_version BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE endpoints (
  id              TEXT COLLATE "C" PRIMARY KEY,
  app_id          TEXT COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
  uid             TEXT COLLATE "C",
  url             TEXT NOT NULL,
  description     TEXT NOT NULL DEFAULT '',
  throttle_rate   INTEGER,
  disabled        BOOLEAN NOT NULL DEFAULT false,
  disabled_reason TEXT,
  event_types     TEXT,
  channels        TEXT,
  metadata        TEXT NOT NULL DEFAULT '{}',
  headers         TEXT NOT NULL DEFAULT '{}',
  created_at      BIGINT NOT NULL,
  updated_at      BIGINT NOT NULL,
  failing_since   BIGINT,
  UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_app ON endpoints(app_id, id);

CREATE TABLE endpoint_secrets (
  id          BIGSERIAL PRIMARY KEY,
  endpoint_id TEXT COLLATE "C" NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
  key         BYTEA NOT NULL,
  sealed      BOOLEAN NOT NULL DEFAULT false,
  created_at  BIGINT NOT NULL,
  expires_at  BIGINT
);
CREATE INDEX endpoint_secrets_ep ON endpoint_secrets(endpoint_id);

CREATE TABLE master_key_check (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  sealed BYTEA NOT NULL
);

CREATE TABLE event_types (
  name        TEXT COLLATE "C" PRIMARY KEY,
  description TEXT NOT NULL DEFAULT '',
  archived    BOOLEAN NOT NULL DEFAULT false,
  deprecated  BOOLEAN NOT NULL DEFAULT false,
  schemas     TEXT,
  group_name  TEXT,
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL
);

CREATE TABLE messages (
  id         TEXT COLLATE "C" PRIMARY KEY,
  app_id     TEXT COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
  event_id   TEXT COLLATE "C",
  event_type TEXT COLLATE "C" NOT NULL,
  payload    TEXT,
  channels   TEXT,
  tags       TEXT,
  created_at BIGINT NOT NULL
);
CREATE INDEX messages_app ON messages(app_id, id);
CREATE UNIQUE INDEX messages_event_id ON messages(app_id, event_id) WHERE event_id IS NOT NULL;

-- The queue: one row per (message, endpoint). due_at is when a pending row is next tried, or
-- when a sending row's lease lapses; claim identifies the claim holding a sending row, so a
-- process whose lease lapsed cannot complete what another took over. Rows change state often:
-- room on each page for updates, and vacuum after a fixed number of dead rows.
CREATE TABLE deliveries (
  id          TEXT COLLATE "C" PRIMARY KEY,
  app_id      TEXT COLLATE "C" NOT NULL,
  msg_id      TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  endpoint_id TEXT COLLATE "C" NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
  status      SMALLINT NOT NULL,
  attempts    INTEGER NOT NULL DEFAULT 0,
  due_at      BIGINT,
  trigger     SMALLINT NOT NULL DEFAULT 0,
  claim       BIGINT,
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
        autovacuum_analyze_scale_factor = 0.02);
CREATE INDEX deliveries_due ON deliveries(due_at) WHERE status IN (1, 3);
CREATE INDEX deliveries_msg ON deliveries(msg_id);
CREATE INDEX deliveries_endpoint ON deliveries(endpoint_id, status);
CREATE INDEX deliveries_parked ON deliveries(endpoint_id, id) WHERE status = 1 AND due_at IS NULL;
CREATE INDEX deliveries_sending ON deliveries(endpoint_id, due_at) WHERE status = 3;

CREATE TABLE attempts (
  id                   TEXT COLLATE "C" PRIMARY KEY,
  app_id               TEXT COLLATE "C" NOT NULL,
  msg_id               TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  endpoint_id          TEXT COLLATE "C" NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
  delivery_id          TEXT COLLATE "C" NOT NULL,
  url                  TEXT NOT NULL,
  response_status_code INTEGER NOT NULL,
  response             TEXT NOT NULL,
  response_duration_ms BIGINT NOT NULL,
  status               SMALLINT NOT NULL,
  trigger              SMALLINT NOT NULL,
  request_headers      TEXT NOT NULL DEFAULT '{}',
  created_at           BIGINT NOT NULL
);
CREATE INDEX attempts_msg ON attempts(msg_id, id);
CREATE INDEX attempts_endpoint ON attempts(endpoint_id, id);

CREATE TABLE api_tokens (
  id         TEXT COLLATE "C" PRIMARY KEY,
  hash       BYTEA NOT NULL UNIQUE,
  app_id     TEXT COLLATE "C" REFERENCES applications(id) ON DELETE CASCADE,
  name       TEXT COLLATE "C" NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  expires_at BIGINT,
  read_only  BOOLEAN NOT NULL DEFAULT false
);

CREATE TABLE idempotency_keys (
  scope       TEXT COLLATE "C" NOT NULL,
  key         TEXT COLLATE "C" NOT NULL,
  path        TEXT COLLATE "C" NOT NULL,
  state       SMALLINT NOT NULL,
  status_code INTEGER,
  body        TEXT,
  created_at  BIGINT NOT NULL,
  PRIMARY KEY (scope, key, path)
);
CREATE INDEX idempotency_created ON idempotency_keys(created_at);

-- Each throttled endpoint's token bucket, shared by every process (see SharedLimitStore).
CREATE TABLE endpoint_buckets (
  endpoint_id TEXT COLLATE "C" PRIMARY KEY,
  tokens      DOUBLE PRECISION NOT NULL,
  refilled_at BIGINT NOT NULL
);
)sql",
    // 2: the queue's tables keep no foreign keys. Each checked key is a query and a row lock
    // (FOR KEY SHARE) per inserted row: on the endpoint row, which every concurrent publisher
    // locks, they cost more than the inserts themselves. Deleting an endpoint or an
    // application deletes its deliveries and attempts itself (PgEndpointStore::remove,
    // PgAppStore::remove), and a delivery whose endpoint is gone is set aside unsent.
    R"sql(
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_msg_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_endpoint_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_msg_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_endpoint_id_fkey;
)sql",
    // 3: nor do messages: every message's key check locked its application's row, the one
    // row every publisher of that application shares. PgAppStore::remove deletes them.
    R"sql(
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_app_id_fkey;
)sql",
    // 4: signature schemes: how an endpoint's deliveries are signed, the header that carries
    // the signature when renamed, and what kind each signing key is.
    R"sql(
ALTER TABLE endpoints ADD COLUMN IF NOT EXISTS signature_scheme TEXT NOT NULL DEFAULT 'standard';
ALTER TABLE endpoints ADD COLUMN IF NOT EXISTS signature_header TEXT;
ALTER TABLE endpoint_secrets ADD COLUMN IF NOT EXISTS kind TEXT NOT NULL DEFAULT 'hmac';
)sql",
    // 5: client certificates (mTLS): the PEM certificate on the endpoint's row; its private
    // key is an endpoint_secrets row of kind 'tls-client', sealed like the signing keys.
    R"sql(
ALTER TABLE endpoints ADD COLUMN IF NOT EXISTS client_cert TEXT;
)sql",
    // 6: scheduled messages (deliverAt): when the message's first attempts are due.
    R"sql(
ALTER TABLE messages ADD COLUMN IF NOT EXISTS deliver_at BIGINT;
)sql",
    // 7: the portal session a token was made for (expire-all by sessionIds).
    R"sql(
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS session_id TEXT;
)sql",
    // 8: feature flags (JSON lists of names): those an event type needs to be seen, and those
    // a portal token was granted.
    R"sql(
ALTER TABLE event_types ADD COLUMN IF NOT EXISTS feature_flags TEXT;
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS feature_flags TEXT NOT NULL DEFAULT '[]';
)sql",
    // 9: background tasks, as SQLite's migration 12: each runs in steps, each committed with
    // its progress (state), under a lease in the row (claim, lease_until) so that exactly one
    // process steps it at a time and another resumes it when the lease lapses. An attempt's
    // response can be expunged.
    R"sql(
CREATE TABLE IF NOT EXISTS background_tasks (
  id          TEXT COLLATE "C" PRIMARY KEY,
  app_id      TEXT COLLATE "C",
  kind        TEXT COLLATE "C" NOT NULL,
  status      SMALLINT NOT NULL,
  params      TEXT NOT NULL,
  state       TEXT NOT NULL,
  data        TEXT NOT NULL,
  claim       BIGINT,
  lease_until BIGINT,
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS background_tasks_running ON background_tasks(id) WHERE status = 0;
CREATE INDEX IF NOT EXISTS background_tasks_app ON background_tasks(app_id, id);
ALTER TABLE attempts ADD COLUMN IF NOT EXISTS response_expunged BOOLEAN NOT NULL DEFAULT false;
)sql",
};

}  // namespace

int latest_schema_version() {
  return static_cast<int>(kMigrations.size());
}

void migrate(Connection& c) {
  for (;;) {
    c.begin();
    try {
      c.exec(kMigrationLock);
      c.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
      auto r = c.query("SELECT max(version) FROM schema_version");
      const int64_t version = r.get_opt_int(0, 0).value_or(0);
      if (version >= latest_schema_version()) {
        c.rollback();
        return;
      }
      c.exec(kMigrations[static_cast<size_t>(version)]);
      c.query("INSERT INTO schema_version (version) VALUES ($1)", Params().add(version + 1));
      c.commit();
    } catch (...) {
      c.rollback();
      throw;
    }
  }
}

}  // namespace herald::pg
