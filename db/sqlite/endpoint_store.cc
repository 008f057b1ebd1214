#include "core/ids.h"
#include "core/secret_box.h"
#include "db/json_text.h"
#include "db/sealing.h"
#include "db/session.h"
#include "db/sqlite/connection.h"
#include "db/sqlite/database.h"
#include "db/sqlite/stores.h"

namespace herald::sqlite {
namespace {

constexpr const char* kColumns =
    "SELECT id, app_id, uid, url, description, throttle_rate, disabled, disabled_reason, "
    "event_types, channels, metadata, headers, created_at, updated_at, failing_since, "
    "signature_scheme, signature_header, client_cert FROM endpoints";

Endpoint read_endpoint(const Stmt& st) {
  Endpoint e;
  e.id = st.get_text(0);
  e.app_id = st.get_text(1);
  e.uid = st.get_opt_text(2);
  e.url = st.get_text(3);
  e.description = st.get_text(4);
  if (auto t = st.get_opt_int(5)) e.throttle_rate = static_cast<int>(*t);
  e.disabled = st.get_int(6) != 0;
  e.disabled_reason = st.get_opt_text(7);
  e.event_types = opt_string_list_from_json(st.get_opt_text(8));
  e.channels = opt_string_list_from_json(st.get_opt_text(9));
  e.metadata = string_map_from_json(st.get_text(10));
  e.headers = string_map_from_json(st.get_text(11));
  e.created_at = st.get_int(12);
  e.updated_at = st.get_int(13);
  e.failing_since = st.get_opt_int(14);
  e.signature_scheme = parse_scheme(st.get_text(15)).value_or(SignatureScheme::kStandard);
  e.signature_header = st.get_opt_text(16);
  e.client_cert = st.get_opt_text(17);
  return e;
}

std::optional<int64_t> opt_int(const std::optional<int>& v) {
  if (!v) return std::nullopt;
  return *v;
}

}  // namespace

void SqliteEndpointStore::insert(const Endpoint& ep, const SigningKey& key) {
  const auto [bytes, sealed] = seal_endpoint_key(x_.session, x_.db.secret_box(), ep.id, key.bytes);
  import_endpoint(ep, {StoredKey{bytes, sealed, ep.created_at, std::nullopt, key.kind}});
}

std::optional<Endpoint> SqliteEndpointStore::get(const std::string& app_id,
                                                 const std::string& key) {
  if (is_id_with_prefix(key, kEndpointPrefix)) {
    auto st = x_.conn.prepare(std::string(kColumns) + " WHERE id = ? AND app_id = ?");
    st.bind(1, key).bind(2, app_id);
    if (st.step()) return read_endpoint(st);
  }
  auto st = x_.conn.prepare(std::string(kColumns) + " WHERE uid = ? AND app_id = ?");
  st.bind(1, key).bind(2, app_id);
  if (!st.step()) return std::nullopt;
  return read_endpoint(st);
}

ListPage<Endpoint> SqliteEndpointStore::list(const std::string& app_id, const ListParams& p) {
  auto k = keyset_sql("id", p.descending.value_or(false), p);
  auto st =
      x_.conn.prepare(std::string(kColumns) + " WHERE app_id = ?" + k.where + k.order + " LIMIT ?");
  int i = 1;
  st.bind(i++, app_id);
  if (p.cursor) st.bind(i++, *p.cursor);
  st.bind(i, p.limit + 1);
  std::vector<Endpoint> rows;
  while (st.step()) rows.push_back(read_endpoint(st));
  return finish_page(std::move(rows), p);
}

std::vector<Endpoint> SqliteEndpointStore::enabled_for_app(const std::string& app_id) {
  auto st =
      x_.conn.prepare(std::string(kColumns) + " WHERE app_id = ? AND disabled = 0 ORDER BY id");
  st.bind(1, app_id);
  std::vector<Endpoint> rows;
  while (st.step()) rows.push_back(read_endpoint(st));
  return rows;
}

bool SqliteEndpointStore::update(const Endpoint& ep) {
  changed_app(ep.app_id);
  x_.conn
      .prepare(
          "UPDATE endpoints SET uid = ?, url = ?, description = ?, throttle_rate = ?, disabled = "
          "?, "
          "disabled_reason = ?, event_types = ?, channels = ?, metadata = ?, headers = ?, "
          "updated_at = ?, failing_since = CASE WHEN disabled = 1 AND ?5 = 0 THEN NULL ELSE "
          "failing_since END, signature_scheme = ?14, signature_header = ?15, client_cert = ?16 "
          "WHERE id = ?12 AND app_id = ?13")
      .bind(1, ep.uid)
      .bind(2, ep.url)
      .bind(3, ep.description)
      .bind(4, opt_int(ep.throttle_rate))
      .bind(5, ep.disabled ? 1 : 0)
      .bind(6, ep.disabled_reason)
      .bind(7, to_json_text(ep.event_types))
      .bind(8, to_json_text(ep.channels))
      .bind(9, to_json_text(ep.metadata))
      .bind(10, to_json_text(ep.headers))
      .bind(11, ep.updated_at)
      .bind(12, ep.id)
      .bind(13, ep.app_id)
      .bind(14, scheme_name(ep.signature_scheme))
      .bind(15, ep.signature_header)
      .bind(16, ep.client_cert)
      .run();
  return x_.conn.changes() > 0;
}

bool SqliteEndpointStore::remove(const std::string& app_id, const std::string& id) {
  changed_app(app_id);
  x_.conn.prepare("DELETE FROM endpoints WHERE id = ? AND app_id = ?")
      .bind(1, id)
      .bind(2, app_id)
      .run();
  return x_.conn.changes() > 0;
}

std::vector<SigningKey> SqliteEndpointStore::signing_keys(const std::string& endpoint_id,
                                                          TimeMs now) {
  auto st = x_.conn.prepare(
      "SELECT key, sealed, kind FROM endpoint_secrets WHERE endpoint_id = ? AND kind <> "
      "'tls-client' AND (expires_at IS NULL OR expires_at > ?) ORDER BY expires_at IS NOT NULL, "
      "created_at DESC");
  st.bind(1, endpoint_id).bind(2, now);
  std::vector<SigningKey> keys;
  while (st.step()) keys.push_back(read_key(st, endpoint_id));
  return keys;
}

std::optional<SigningKey> SqliteEndpointStore::current_key(const std::string& endpoint_id) {
  auto st = x_.conn.prepare(
      "SELECT key, sealed, kind FROM endpoint_secrets WHERE endpoint_id = ? AND kind <> "
      "'tls-client' AND expires_at IS NULL ORDER BY created_at DESC LIMIT 1");
  st.bind(1, endpoint_id);
  if (!st.step()) return std::nullopt;
  return read_key(st, endpoint_id);
}

SigningKey SqliteEndpointStore::read_key(const Stmt& st, const std::string& endpoint_id) {
  return SigningKey{
      parse_key_kind(st.get_text(2)).value_or(KeyKind::kHmac),
      open_endpoint_key(x_.db.secret_box(), endpoint_id, st.get_text(0), st.get_int(1) != 0)};
}

void SqliteEndpointStore::rotate_key(const std::string& endpoint_id, const SigningKey& key,
                                     int64_t grace_ms, TimeMs now) {
  changed_endpoint(endpoint_id);
  const auto [bytes, sealed] =
      seal_endpoint_key(x_.session, x_.db.secret_box(), endpoint_id, key.bytes);
  x_.conn
      .prepare(
          "DELETE FROM endpoint_secrets WHERE endpoint_id = ? AND kind <> 'tls-client' AND "
          "expires_at <= ?")
      .bind(1, endpoint_id)
      .bind(2, now)
      .run();
  x_.conn
      .prepare(
          "UPDATE endpoint_secrets SET expires_at = ? WHERE endpoint_id = ? AND kind <> "
          "'tls-client' AND expires_at IS NULL")
      .bind(1, now + grace_ms)
      .bind(2, endpoint_id)
      .run();
  x_.conn
      .prepare(
          "INSERT INTO endpoint_secrets (endpoint_id, key, sealed, created_at, kind) VALUES (?, ?, "
          "?, ?, ?)")
      .bind(1, endpoint_id)
      .bind_blob(2, bytes)
      .bind(3, sealed ? 1 : 0)
      .bind(4, now)
      .bind(5, key_kind_name(key.kind))
      .run();
}

std::optional<std::string> SqliteEndpointStore::client_key(const std::string& endpoint_id) {
  auto st = x_.conn.prepare(
      "SELECT key, sealed FROM endpoint_secrets WHERE endpoint_id = ? AND kind = 'tls-client'");
  st.bind(1, endpoint_id);
  if (!st.step()) return std::nullopt;
  return open_endpoint_key(x_.db.secret_box(), endpoint_id, st.get_text(0), st.get_int(1) != 0);
}

void SqliteEndpointStore::set_client_key(const std::string& endpoint_id,
                                         const std::optional<std::string>& pem, TimeMs now) {
  changed_endpoint(endpoint_id);
  x_.conn.prepare("DELETE FROM endpoint_secrets WHERE endpoint_id = ? AND kind = 'tls-client'")
      .bind(1, endpoint_id)
      .run();
  if (!pem) return;
  const auto [bytes, sealed] = seal_endpoint_key(x_.session, x_.db.secret_box(), endpoint_id, *pem);
  insert_key_row(endpoint_id, StoredKey{bytes, sealed, now, std::nullopt, KeyKind::kTlsClient});
}

int SqliteEndpointStore::seal_plaintext_keys() {
  const SecretBox* box = x_.db.secret_box();
  if (box == nullptr) throw MasterKeyMismatch("no master key to seal secrets with");
  struct Row {
    int64_t rowid;
    std::string endpoint_id, key;
  };
  std::vector<Row> rows;
  {
    auto st =
        x_.conn.prepare("SELECT rowid, endpoint_id, key FROM endpoint_secrets WHERE sealed = 0");
    while (st.step()) rows.push_back({st.get_int(0), st.get_text(1), st.get_text(2)});
  }
  for (const auto& r : rows) {
    x_.conn.prepare("UPDATE endpoint_secrets SET key = ?, sealed = 1 WHERE rowid = ?")
        .bind_blob(1, box->seal(r.key, r.endpoint_id))
        .bind(2, r.rowid)
        .run();
  }
  return static_cast<int>(rows.size());
}

int SqliteEndpointStore::reseal_keys(const SecretBox& to) {
  struct Row {
    int64_t rowid;
    std::string endpoint_id, key;
  };
  std::vector<Row> rows;
  {
    auto st = x_.conn.prepare("SELECT rowid, endpoint_id, key, sealed FROM endpoint_secrets");
    while (st.step()) {
      std::string endpoint_id = st.get_text(1);
      std::string key =
          open_endpoint_key(x_.db.secret_box(), endpoint_id, st.get_text(2), st.get_int(3) != 0);
      rows.push_back({st.get_int(0), std::move(endpoint_id), std::move(key)});
    }
  }
  for (const auto& r : rows) {
    x_.conn.prepare("UPDATE endpoint_secrets SET key = ?, sealed = 1 WHERE rowid = ?")
        .bind_blob(1, to.seal(r.key, r.endpoint_id))
        .bind(2, r.rowid)
        .run();
  }
  return static_cast<int>(rows.size());
}

bool SqliteEndpointStore::has_sealed_keys() {
  return x_.conn.prepare("SELECT 1 FROM endpoint_secrets WHERE sealed = 1 LIMIT 1").step();
}

bool SqliteEndpointStore::sealed_keys_open() {
  auto st =
      x_.conn.prepare("SELECT endpoint_id, key FROM endpoint_secrets WHERE sealed = 1 LIMIT 1");
  if (!st.step()) return true;
  const SecretBox* box = x_.db.secret_box();
  return box != nullptr && box->open(st.get_text(1), st.get_text(0)).has_value();
}

std::optional<TimeMs> SqliteEndpointStore::note_failure(const std::string& endpoint_id, TimeMs at) {
  auto st = x_.conn.prepare(
      "UPDATE endpoints SET failing_since = coalesce(failing_since, ?) WHERE id = ? "
      "RETURNING failing_since");
  st.bind(1, at).bind(2, endpoint_id);
  if (!st.step()) return std::nullopt;
  return st.get_opt_int(0);
}

void SqliteEndpointStore::note_successes(const std::vector<std::string>& endpoint_ids) {
  if (endpoint_ids.empty()) return;
  x_.conn
      .prepare(
          "UPDATE endpoints SET failing_since = NULL WHERE id IN (SELECT value FROM json_each(?)) "
          "AND failing_since IS NOT NULL")
      .bind(1, to_json_text(endpoint_ids))
      .run();
}

bool SqliteEndpointStore::disable(const std::string& endpoint_id, const std::string& reason,
                                  TimeMs now) {
  changed_endpoint(endpoint_id);
  x_.conn
      .prepare(
          "UPDATE endpoints SET disabled = 1, disabled_reason = ?, updated_at = ? WHERE id = ? AND "
          "disabled = 0")
      .bind(1, reason)
      .bind(2, now)
      .bind(3, endpoint_id)
      .run();
  return x_.conn.changes() > 0;
}

void SqliteEndpointStore::changed_app(const std::string& app_id) {
  x_.conn.prepare("UPDATE applications SET endpoints_version = endpoints_version + 1 WHERE id = ?")
      .bind(1, app_id)
      .run();
}

void SqliteEndpointStore::changed_endpoint(const std::string& endpoint_id) {
  x_.conn
      .prepare(
          "UPDATE applications SET endpoints_version = endpoints_version + 1 WHERE id = (SELECT "
          "app_id FROM endpoints WHERE id = ?)")
      .bind(1, endpoint_id)
      .run();
}

std::optional<std::string> SqliteEndpointStore::key_check() {
  auto st = x_.conn.prepare("SELECT sealed FROM master_key_check WHERE id = 1");
  if (!st.step()) return std::nullopt;
  return st.get_text(0);
}

void SqliteEndpointStore::set_key_check(const std::string& sealed) {
  x_.conn.prepare("INSERT OR REPLACE INTO master_key_check (id, sealed) VALUES (1, ?)")
      .bind_blob(1, sealed)
      .run();
}

std::vector<StoredKey> SqliteEndpointStore::stored_keys(const std::string& endpoint_id) {
  auto st = x_.conn.prepare(
      "SELECT key, sealed, created_at, expires_at, kind FROM endpoint_secrets WHERE endpoint_id "
      "= ? ORDER BY rowid");
  st.bind(1, endpoint_id);
  std::vector<StoredKey> out;
  while (st.step()) {
    out.push_back(StoredKey{st.get_text(0), st.get_int(1) != 0, st.get_int(2), st.get_opt_int(3),
                            parse_key_kind(st.get_text(4)).value_or(KeyKind::kHmac)});
  }
  return out;
}

void SqliteEndpointStore::insert_stored_key(const std::string& endpoint_id, const StoredKey& key) {
  changed_endpoint(endpoint_id);
  insert_key_row(endpoint_id, key);
}

void SqliteEndpointStore::insert_key_row(const std::string& endpoint_id, const StoredKey& key) {
  x_.conn
      .prepare(
          "INSERT INTO endpoint_secrets (endpoint_id, key, sealed, created_at, expires_at, kind) "
          "VALUES (?, ?, ?, ?, ?, ?)")
      .bind(1, endpoint_id)
      .bind_blob(2, key.bytes)
      .bind(3, key.sealed ? 1 : 0)
      .bind(4, key.created_at)
      .bind(5, key.expires_at)
      .bind(6, key_kind_name(key.kind))
      .run();
}

void SqliteEndpointStore::import_endpoint(const Endpoint& ep, const std::vector<StoredKey>& keys) {
  changed_app(ep.app_id);
  x_.conn
      .prepare(
          "INSERT INTO endpoints (id, app_id, uid, url, description, throttle_rate, disabled, "
          "disabled_reason, event_types, channels, metadata, headers, created_at, updated_at, "
          "failing_since, signature_scheme, signature_header, client_cert) VALUES (?, ?, ?, ?, ?, "
          "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, ep.id)
      .bind(2, ep.app_id)
      .bind(3, ep.uid)
      .bind(4, ep.url)
      .bind(5, ep.description)
      .bind(6, opt_int(ep.throttle_rate))
      .bind(7, ep.disabled ? 1 : 0)
      .bind(8, ep.disabled_reason)
      .bind(9, to_json_text(ep.event_types))
      .bind(10, to_json_text(ep.channels))
      .bind(11, to_json_text(ep.metadata))
      .bind(12, to_json_text(ep.headers))
      .bind(13, ep.created_at)
      .bind(14, ep.updated_at)
      .bind(15, ep.failing_since)
      .bind(16, scheme_name(ep.signature_scheme))
      .bind(17, ep.signature_header)
      .bind(18, ep.client_cert)
      .run();
  for (const auto& k : keys) insert_key_row(ep.id, k);
}

}  // namespace herald::sqlite
