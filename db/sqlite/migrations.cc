#include "db/sqlite/migrations.h"

#include <array>

#include "db/sqlite/connection.h"

namespace herald::sqlite {
namespace {

// Each entry moves the schema one version forward. Never edit a shipped entry: append.
constexpr std::array kMigrations = {
    // 1: the core tables.
    R"sql(
CREATE TABLE applications (
  id            TEXT PRIMARY KEY,
  uid           TEXT UNIQUE,
  name          TEXT NOT NULL,
  throttle_rate INTEGER,
  metadata      TEXT NOT NULL DEFAULT '{}',
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);

CREATE TABLE endpoints (
  id              TEXT PRIMARY KEY,
  app_id          TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
  uid             TEXT,
  url             TEXT NOT NULL,
  description     TEXT NOT NULL DEFAULT '',
  throttle_rate   INTEGER,
  disabled        INTEGER NOT NULL DEFAULT 0,
  disabled_reason TEXT,
  event_types     TEXT,
  channels        TEXT,
  metadata        TEXT NOT NULL DEFAULT '{}',
  headers         TEXT NOT NULL DEFAULT '{}',
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_app ON endpoints(app_id, id);

CREATE TABLE endpoint_secrets (
  endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
  key         BLOB NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER
);
CREATE INDEX endpoint_secrets_ep ON endpoint_secrets(endpoint_id);

CREATE TABLE event_types (
  name        TEXT PRIMARY KEY,
  description TEXT NOT NULL DEFAULT '',
  archived    INTEGER NOT NULL DEFAULT 0,
  deprecated  INTEGER NOT NULL DEFAULT 0,
  schemas     TEXT,
  group_name  TEXT,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);

CREATE TABLE messages (
  id         TEXT PRIMARY KEY,
  app_id     TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
  event_id   TEXT,
  event_type TEXT NOT NULL,
  payload    TEXT,
  channels   TEXT,
  tags       TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX messages_app ON messages(app_id, id);
CREATE UNIQUE INDEX messages_event_id ON messages(app_id, event_id) WHERE event_id IS NOT NULL;

-- The queue: one row per (message, endpoint). due_at is when a pending row is next tried,
-- or when a sending row's lease lapses; claiming takes rows in status 1 or 3 with due_at <= now.
CREATE TABLE deliveries (
  id          TEXT PRIMARY KEY,
  app_id      TEXT NOT NULL,
  msg_id      TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
  status      INTEGER NOT NULL,
  attempts    INTEGER NOT NULL DEFAULT 0,
  due_at      INTEGER,
  trigger     INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(due_at) WHERE status IN (1, 3);
CREATE INDEX deliveries_msg ON deliveries(msg_id);
CREATE INDEX deliveries_endpoint ON deliveries(endpoint_id, status);

CREATE TABLE attempts (
  id                   TEXT PRIMARY KEY,
  app_id               TEXT NOT NULL,
  msg_id               TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  endpoint_id          TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
  delivery_id          TEXT NOT NULL,
  url                  TEXT NOT NULL,
  response_status_code INTEGER NOT NULL,
  response             TEXT NOT NULL,
  response_duration_ms INTEGER NOT NULL,
  status               INTEGER NOT NULL,
  trigger              INTEGER NOT NULL,
  request_headers      TEXT NOT NULL DEFAULT '{}',
  created_at           INTEGER NOT NULL
);
CREATE INDEX attempts_msg ON attempts(msg_id, id);
CREATE INDEX attempts_endpoint ON attempts(endpoint_id, id);

CREATE TABLE api_tokens (
  id         TEXT PRIMARY KEY,
  hash       BLOB NOT NULL UNIQUE,
  app_id     TEXT REFERENCES applications(id) ON DELETE CASCADE,
  name       TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  expires_at INTEGER
);

CREATE TABLE idempotency_keys (
  scope       TEXT NOT NULL,
  key         TEXT NOT NULL,
  path        TEXT NOT NULL,
  state       INTEGER NOT NULL,
  status_code INTEGER,
  body        TEXT,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (scope, key, path)
);
CREATE INDEX idempotency_created ON idempotency_keys(created_at);
)sql",
    // 2: endpoint health (when the current run of failures began).
    R"sql(
ALTER TABLE endpoints ADD COLUMN failing_since INTEGER;
)sql",
    // 3: endpoint secrets sealed with the master key (sealed = 1: key holds a SecretBox value),
    // and a known value sealed with that key, to tell a wrong key at start.
    R"sql(
ALTER TABLE endpoint_secrets ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
CREATE TABLE master_key_check (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  sealed BLOB NOT NULL
);
)sql",
    // 4: parked deliveries (pending with no due time: their endpoint had no room), found per
    // endpoint in the order they were made.
    R"sql(
CREATE INDEX deliveries_parked ON deliveries(endpoint_id, id) WHERE status = 1 AND due_at IS NULL;
)sql",
    // 5: portal access (issue 5): tokens that may only read (read_only = 1: GET requests only).
    R"sql(
ALTER TABLE api_tokens ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0;
)sql",
    // 6: a version of each application's endpoints, bumped by every write to them, so that
    // caches of endpoints can tell when they are stale (Application::endpoints_version).
    R"sql(
ALTER TABLE applications ADD COLUMN endpoints_version INTEGER NOT NULL DEFAULT 0;
)sql",
    // 7: signature schemes: how an endpoint's deliveries are signed, the header
    // that carries the signature when renamed, and what kind each signing key is.
    R"sql(
ALTER TABLE endpoints ADD COLUMN signature_scheme TEXT NOT NULL DEFAULT 'standard';
ALTER TABLE endpoints ADD COLUMN signature_header TEXT;
ALTER TABLE endpoint_secrets ADD COLUMN kind TEXT NOT NULL DEFAULT 'hmac';
)sql",
    // 8: client certificates (mTLS): the PEM certificate on the endpoint's row; its private
    // key is an endpoint_secrets row of kind 'tls-client', sealed like the signing keys.
    R"sql(
ALTER TABLE endpoints ADD COLUMN client_cert TEXT;
)sql",
    // 9: scheduled messages (deliverAt): when the message's first attempts are due.
    R"sql(
ALTER TABLE messages ADD COLUMN deliver_at INTEGER;
)sql",
    // 10: the portal session a token was made for (expire-all by sessionIds).
    R"sql(
ALTER TABLE api_tokens ADD COLUMN session_id TEXT;
)sql",
    // 11: feature flags (JSON lists of names): those an event type needs to be seen, and those
    // a portal token was granted.
    R"sql(
ALTER TABLE event_types ADD COLUMN feature_flags TEXT;
ALTER TABLE api_tokens ADD COLUMN feature_flags TEXT NOT NULL DEFAULT '[]';
)sql",
    // 12: background tasks (recover, replays, purges, usage counts): each runs in steps, each
    // step committed with its progress (state), under a lease in the row (claim, lease_until)
    // so that one process steps it at a time and another resumes it when the lease lapses.
    // An attempt's response can be expunged.
    R"sql(
CREATE TABLE background_tasks (
  id          TEXT PRIMARY KEY,
  app_id      TEXT,
  kind        TEXT NOT NULL,
  status      INTEGER NOT NULL,
  params      TEXT NOT NULL,
  state       TEXT NOT NULL,
  data        TEXT NOT NULL,
  claim       INTEGER,
  lease_until INTEGER,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE INDEX background_tasks_running ON background_tasks(id) WHERE status = 0;
CREATE INDEX background_tasks_app ON background_tasks(app_id, id);
ALTER TABLE attempts ADD COLUMN response_expunged INTEGER NOT NULL DEFAULT 0;
)sql",
};

}  // namespace

int latest_schema_version() {
  return static_cast<int>(kMigrations.size());
}

void migrate(Connection& c) {
  c.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  for (;;) {
    Transaction tx(c);
    int64_t version = 0;
    {
      auto st = c.prepare("SELECT max(version) FROM schema_version");
      if (st.step() && !st.is_null(0)) version = st.get_int(0);
    }
    if (version >= latest_schema_version()) return;  // tx rolls back: nothing to do
    c.exec(kMigrations[static_cast<size_t>(version)]);
    c.prepare("INSERT INTO schema_version (version) VALUES (?)").bind(1, version + 1).run();
    tx.commit();
  }
}

}  // namespace herald::sqlite
