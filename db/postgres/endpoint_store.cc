#include "core/ids.h"
#include "core/secret_box.h"
#include "db/json_text.h"
#include "db/postgres/connection.h"
#include "db/postgres/database.h"
#include "db/postgres/stores.h"
#include "db/sealing.h"

namespace herald::pg {
namespace {

constexpr const char* kColumns =
    "SELECT id, app_id, uid, url, description, throttle_rate, disabled, disabled_reason, "
    "event_types, channels, metadata, headers, created_at, updated_at, failing_since, "
    "signature_scheme, signature_header, client_cert FROM endpoints";

Endpoint read_endpoint(const Result& r, int row) {
  Endpoint e;
  e.id = r.get_text(row, 0);
  e.app_id = r.get_text(row, 1);
  e.uid = r.get_opt_text(row, 2);
  e.url = r.get_text(row, 3);
  e.description = r.get_text(row, 4);
  if (auto t = r.get_opt_int(row, 5)) e.throttle_rate = static_cast<int>(*t);
  e.disabled = r.get_bool(row, 6);
  e.disabled_reason = r.get_opt_text(row, 7);
  e.event_types = opt_string_list_from_json(r.get_opt_text(row, 8));
  e.channels = opt_string_list_from_json(r.get_opt_text(row, 9));
  e.metadata = string_map_from_json(r.get_text(row, 10));
  e.headers = string_map_from_json(r.get_text(row, 11));
  e.created_at = r.get_int(row, 12);
  e.updated_at = r.get_int(row, 13);
  e.failing_since = r.get_opt_int(row, 14);
  e.signature_scheme = parse_scheme(r.get_text(row, 15)).value_or(SignatureScheme::kStandard);
  e.signature_header = r.get_opt_text(row, 16);
  e.client_cert = r.get_opt_text(row, 17);
  return e;
}

std::vector<Endpoint> read_endpoints(const Result& r) {
  std::vector<Endpoint> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(read_endpoint(r, i));
  return out;
}

std::optional<int64_t> opt_int(const std::optional<int>& v) {
  if (!v) return std::nullopt;
  return *v;
}

}  // namespace

void PgEndpointStore::insert(const Endpoint& ep, const SigningKey& key) {
  const auto [bytes, sealed] = seal_endpoint_key(x_.session, x_.db.secret_box(), ep.id, key.bytes);
  import_endpoint(ep, {StoredKey{bytes, sealed, ep.created_at, std::nullopt, key.kind}});
}

std::optional<Endpoint> PgEndpointStore::get(const std::string& app_id, const std::string& key) {
  if (is_id_with_prefix(key, kEndpointPrefix)) {
    auto r = x_.conn.query(std::string(kColumns) + " WHERE id = $1 AND app_id = $2",
                           Params().add(key).add(app_id));
    if (r.rows() > 0) return read_endpoint(r, 0);
  }
  auto r = x_.conn.query(std::string(kColumns) + " WHERE uid = $1 AND app_id = $2",
                         Params().add(key).add(app_id));
  if (r.rows() == 0) return std::nullopt;
  return read_endpoint(r, 0);
}

ListPage<Endpoint> PgEndpointStore::list(const std::string& app_id, const ListParams& p) {
  auto k = keyset_sql("id", p.descending.value_or(false), p, "$2");
  Params params;
  params.add(app_id);
  if (p.cursor) params.add(*p.cursor);
  params.add(p.limit + 1);
  auto r = x_.conn.query(std::string(kColumns) + " WHERE app_id = $1" + k.where + k.order +
                             " LIMIT $" + std::to_string(params.size()),
                         params);
  return finish_page(read_endpoints(r), p);
}

std::vector<Endpoint> PgEndpointStore::enabled_for_app(const std::string& app_id) {
  return read_endpoints(
      x_.conn.query(std::string(kColumns) + " WHERE app_id = $1 AND NOT disabled ORDER BY id",
                    Params().add(app_id)));
}

bool PgEndpointStore::update(const Endpoint& ep) {
  changed_app(ep.app_id);
  return x_.conn
             .query(
                 "UPDATE endpoints SET uid = $1, url = $2, description = $3, throttle_rate = $4, "
                 "disabled = $5, disabled_reason = $6, event_types = $7, channels = $8, "
                 "metadata = $9, headers = $10, updated_at = $11, failing_since = CASE WHEN "
                 "disabled AND NOT $5 THEN NULL ELSE failing_since END, signature_scheme = $14, "
                 "signature_header = $15, client_cert = $16 WHERE id = $12 AND app_id = $13",
                 Params()
                     .add(ep.uid)
                     .add(ep.url)
                     .add(ep.description)
                     .add(opt_int(ep.throttle_rate))
                     .add(ep.disabled)
                     .add(ep.disabled_reason)
                     .add(to_json_text(ep.event_types))
                     .add(to_json_text(ep.channels))
                     .add(to_json_text(ep.metadata))
                     .add(to_json_text(ep.headers))
                     .add(ep.updated_at)
                     .add(ep.id)
                     .add(ep.app_id)
                     .add(scheme_name(ep.signature_scheme))
                     .add(ep.signature_header)
                     .add(ep.client_cert))
             .affected() > 0;
}

bool PgEndpointStore::remove(const std::string& app_id, const std::string& id) {
  changed_app(app_id);
  // One statement, so that it is whole outside a transaction too; the queue's tables hold no
  // foreign keys (migration 2), so their rows go here.
  return x_.conn
             .query(
                 "WITH e AS (DELETE FROM endpoints WHERE id = $1 AND app_id = $2 RETURNING id), "
                 "d AS (DELETE FROM deliveries WHERE endpoint_id IN (SELECT id FROM e)), "
                 "a AS (DELETE FROM attempts WHERE endpoint_id IN (SELECT id FROM e)), "
                 "b AS (DELETE FROM endpoint_buckets WHERE endpoint_id IN (SELECT id FROM e)) "
                 "SELECT count(*) FROM e",
                 Params().add(id).add(app_id))
             .get_int(0, 0) > 0;
}

std::optional<TimeMs> PgEndpointStore::note_failure(const std::string& endpoint_id, TimeMs at) {
  auto r = x_.conn.query(
      "UPDATE endpoints SET failing_since = coalesce(failing_since, $1) WHERE id = $2 RETURNING "
      "failing_since",
      Params().add(at).add(endpoint_id));
  if (r.rows() == 0) return std::nullopt;
  return r.get_opt_int(0, 0);
}

void PgEndpointStore::note_successes(const std::vector<std::string>& endpoint_ids) {
  if (endpoint_ids.empty()) return;
  x_.conn.query(
      "UPDATE endpoints SET failing_since = NULL WHERE id = ANY($1::text[]) AND failing_since IS "
      "NOT NULL",
      Params().add_array(endpoint_ids));
}

bool PgEndpointStore::disable(const std::string& endpoint_id, const std::string& reason,
                              TimeMs now) {
  changed_endpoint(endpoint_id);
  return x_.conn
             .query(
                 "UPDATE endpoints SET disabled = true, disabled_reason = $1, updated_at = $2 "
                 "WHERE id = $3 AND NOT disabled",
                 Params().add(reason).add(now).add(endpoint_id))
             .affected() > 0;
}

std::vector<SigningKey> PgEndpointStore::signing_keys(const std::string& endpoint_id, TimeMs now) {
  auto r = x_.conn.query(
      "SELECT key, sealed, kind FROM endpoint_secrets WHERE endpoint_id = $1 AND kind <> "
      "'tls-client' AND (expires_at IS NULL OR expires_at > $2) ORDER BY expires_at IS NOT NULL, "
      "created_at DESC, id DESC",
      Params().add(endpoint_id).add(now));
  std::vector<SigningKey> keys;
  for (int i = 0; i < r.rows(); ++i) keys.push_back(read_key(r, i, endpoint_id));
  return keys;
}

std::optional<SigningKey> PgEndpointStore::current_key(const std::string& endpoint_id) {
  auto r = x_.conn.query(
      "SELECT key, sealed, kind FROM endpoint_secrets WHERE endpoint_id = $1 AND kind <> "
      "'tls-client' AND expires_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1",
      Params().add(endpoint_id));
  if (r.rows() == 0) return std::nullopt;
  return read_key(r, 0, endpoint_id);
}

SigningKey PgEndpointStore::read_key(const Result& r, int row, const std::string& endpoint_id) {
  return SigningKey{
      parse_key_kind(r.get_text(row, 2)).value_or(KeyKind::kHmac),
      open_endpoint_key(x_.db.secret_box(), endpoint_id, r.get_bytea(row, 0), r.get_bool(row, 1))};
}

void PgEndpointStore::rotate_key(const std::string& endpoint_id, const SigningKey& key,
                                 int64_t grace_ms, TimeMs now) {
  changed_endpoint(endpoint_id);
  const auto [bytes, sealed] =
      seal_endpoint_key(x_.session, x_.db.secret_box(), endpoint_id, key.bytes);
  x_.conn.query(
      "DELETE FROM endpoint_secrets WHERE endpoint_id = $1 AND kind <> 'tls-client' AND "
      "expires_at <= $2",
      Params().add(endpoint_id).add(now));
  x_.conn.query(
      "UPDATE endpoint_secrets SET expires_at = $1 WHERE endpoint_id = $2 AND kind <> "
      "'tls-client' AND expires_at IS NULL",
      Params().add(now + grace_ms).add(endpoint_id));
  x_.conn.query(
      "INSERT INTO endpoint_secrets (endpoint_id, key, sealed, created_at, kind) VALUES ($1, $2, "
      "$3, $4, $5)",
      Params().add(endpoint_id).add_bytea(bytes).add(sealed).add(now).add(key_kind_name(key.kind)));
}

int PgEndpointStore::seal_plaintext_keys() {
  const SecretBox* box = x_.db.secret_box();
  if (box == nullptr) throw MasterKeyMismatch("no master key to seal secrets with");
  auto r = x_.conn.query(
      "SELECT id, endpoint_id, key FROM endpoint_secrets WHERE NOT sealed ORDER BY id FOR UPDATE");
  for (int i = 0; i < r.rows(); ++i) {
    x_.conn.query(
        "UPDATE endpoint_secrets SET key = $1, sealed = true WHERE id = $2",
        Params().add_bytea(box->seal(r.get_bytea(i, 2), r.get_text(i, 1))).add(r.get_int(i, 0)));
  }
  return r.rows();
}

int PgEndpointStore::reseal_keys(const SecretBox& to) {
  auto r = x_.conn.query(
      "SELECT id, endpoint_id, key, sealed FROM endpoint_secrets ORDER BY id FOR UPDATE");
  std::vector<std::pair<int64_t, std::string>> resealed;
  for (int i = 0; i < r.rows(); ++i) {
    const std::string endpoint_id = r.get_text(i, 1);
    const std::string key =
        open_endpoint_key(x_.db.secret_box(), endpoint_id, r.get_bytea(i, 2), r.get_bool(i, 3));
    resealed.emplace_back(r.get_int(i, 0), to.seal(key, endpoint_id));
  }
  for (const auto& [id, bytes] : resealed) {
    x_.conn.query("UPDATE endpoint_secrets SET key = $1, sealed = true WHERE id = $2",
                  Params().add_bytea(bytes).add(id));
  }
  return static_cast<int>(resealed.size());
}

bool PgEndpointStore::has_sealed_keys() {
  return x_.conn.query("SELECT 1 FROM endpoint_secrets WHERE sealed LIMIT 1").rows() > 0;
}

bool PgEndpointStore::sealed_keys_open() {
  auto r = x_.conn.query("SELECT endpoint_id, key FROM endpoint_secrets WHERE sealed LIMIT 1");
  if (r.rows() == 0) return true;
  const SecretBox* box = x_.db.secret_box();
  return box != nullptr && box->open(r.get_bytea(0, 1), r.get_text(0, 0)).has_value();
}

void PgEndpointStore::changed_app(const std::string& app_id) {
  x_.conn.query("UPDATE applications SET endpoints_version = endpoints_version + 1 WHERE id = $1",
                Params().add(app_id));
}

void PgEndpointStore::changed_endpoint(const std::string& endpoint_id) {
  x_.conn.query(
      "UPDATE applications SET endpoints_version = endpoints_version + 1 WHERE id = (SELECT "
      "app_id FROM endpoints WHERE id = $1)",
      Params().add(endpoint_id));
}

std::optional<std::string> PgEndpointStore::key_check() {
  auto r = x_.conn.query("SELECT sealed FROM master_key_check WHERE id = 1");
  if (r.rows() == 0) return std::nullopt;
  return r.get_bytea(0, 0);
}

void PgEndpointStore::set_key_check(const std::string& sealed) {
  x_.conn.query(
      "INSERT INTO master_key_check (id, sealed) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET "
      "sealed = excluded.sealed",
      Params().add_bytea(sealed));
}

std::optional<std::string> PgEndpointStore::client_key(const std::string& endpoint_id) {
  auto r = x_.conn.query(
      "SELECT key, sealed FROM endpoint_secrets WHERE endpoint_id = $1 AND kind = 'tls-client'",
      Params().add(endpoint_id));
  if (r.rows() == 0) return std::nullopt;
  return open_endpoint_key(x_.db.secret_box(), endpoint_id, r.get_bytea(0, 0), r.get_bool(0, 1));
}

void PgEndpointStore::set_client_key(const std::string& endpoint_id,
                                     const std::optional<std::string>& pem, TimeMs now) {
  changed_endpoint(endpoint_id);
  x_.conn.query("DELETE FROM endpoint_secrets WHERE endpoint_id = $1 AND kind = 'tls-client'",
                Params().add(endpoint_id));
  if (!pem) return;
  const auto [bytes, sealed] = seal_endpoint_key(x_.session, x_.db.secret_box(), endpoint_id, *pem);
  insert_key_row(endpoint_id, StoredKey{bytes, sealed, now, std::nullopt, KeyKind::kTlsClient});
}

std::vector<StoredKey> PgEndpointStore::stored_keys(const std::string& endpoint_id) {
  auto r = x_.conn.query(
      "SELECT key, sealed, created_at, expires_at, kind FROM endpoint_secrets WHERE endpoint_id "
      "= $1 ORDER BY id",
      Params().add(endpoint_id));
  std::vector<StoredKey> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(StoredKey{r.get_bytea(i, 0), r.get_bool(i, 1), r.get_int(i, 2),
                            r.get_opt_int(i, 3),
                            parse_key_kind(r.get_text(i, 4)).value_or(KeyKind::kHmac)});
  }
  return out;
}

void PgEndpointStore::insert_stored_key(const std::string& endpoint_id, const StoredKey& key) {
  changed_endpoint(endpoint_id);
  insert_key_row(endpoint_id, key);
}

void PgEndpointStore::insert_key_row(const std::string& endpoint_id, const StoredKey& key) {
  x_.conn.query(
      "INSERT INTO endpoint_secrets (endpoint_id, key, sealed, created_at, expires_at, kind) "
      "VALUES ($1, $2, $3, $4, $5, $6)",
      Params()
          .add(endpoint_id)
          .add_bytea(key.bytes)
          .add(key.sealed)
          .add(key.created_at)
          .add(key.expires_at)
          .add(key_kind_name(key.kind)));
}

void PgEndpointStore::import_endpoint(const Endpoint& ep, const std::vector<StoredKey>& keys) {
  changed_app(ep.app_id);
  x_.conn.query(
      "INSERT INTO endpoints (id, app_id, uid, url, description, throttle_rate, disabled, "
      "disabled_reason, event_types, channels, metadata, headers, created_at, updated_at, "
      "failing_since, signature_scheme, signature_header, client_cert) VALUES ($1, $2, $3, $4, $5, "
      "$6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
      Params()
          .add(ep.id)
          .add(ep.app_id)
          .add(ep.uid)
          .add(ep.url)
          .add(ep.description)
          .add(opt_int(ep.throttle_rate))
          .add(ep.disabled)
          .add(ep.disabled_reason)
          .add(to_json_text(ep.event_types))
          .add(to_json_text(ep.channels))
          .add(to_json_text(ep.metadata))
          .add(to_json_text(ep.headers))
          .add(ep.created_at)
          .add(ep.updated_at)
          .add(ep.failing_since)
          .add(scheme_name(ep.signature_scheme))
          .add(ep.signature_header)
          .add(ep.client_cert));
  for (const auto& k : keys) insert_key_row(ep.id, k);
}

}  // namespace herald::pg
