#include "core/ids.h"
#include "db/postgres/connection.h"
#include "db/postgres/stores.h"

namespace herald::pg {
namespace {

constexpr const char* kColumns =
    "SELECT id, app_id, msg_id, endpoint_id, delivery_id, url, response_status_code, response, "
    "response_duration_ms, status, trigger, request_headers, created_at, response_expunged::int "
    "FROM attempts";

std::vector<Attempt> read_attempts(const Result& r) {
  std::vector<Attempt> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    Attempt a;
    a.id = r.get_text(i, 0);
    a.app_id = r.get_text(i, 1);
    a.msg_id = r.get_text(i, 2);
    a.endpoint_id = r.get_text(i, 3);
    a.delivery_id = r.get_text(i, 4);
    a.url = r.get_text(i, 5);
    a.response_status_code = static_cast<int>(r.get_int(i, 6));
    a.response = r.get_text(i, 7);
    a.response_duration_ms = r.get_int(i, 8);
    a.status = static_cast<DeliveryStatus>(r.get_int(i, 9));
    a.trigger = static_cast<TriggerType>(r.get_int(i, 10));
    a.request_headers_json = r.get_text(i, 11);
    a.timestamp = r.get_int(i, 12);
    a.response_expunged = r.get_int(i, 13) != 0;
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

void PgAttemptStore::insert(const std::vector<Attempt>& attempts) {
  if (attempts.empty()) return;
  // One statement for the whole batch, column by column.
  std::vector<std::string> ids, apps, msgs, endpoints, deliveries, urls, responses, headers;
  std::vector<int64_t> codes, durations, statuses, triggers, times;
  for (const auto& a : attempts) {
    ids.push_back(a.id);
    apps.push_back(a.app_id);
    msgs.push_back(a.msg_id);
    endpoints.push_back(a.endpoint_id);
    deliveries.push_back(a.delivery_id);
    urls.push_back(a.url);
    codes.push_back(a.response_status_code);
    responses.push_back(a.response);
    durations.push_back(a.response_duration_ms);
    statuses.push_back(static_cast<int64_t>(a.status));
    triggers.push_back(static_cast<int64_t>(a.trigger));
    headers.push_back(a.request_headers_json);
    times.push_back(a.timestamp);
  }
  x_.conn.query(
      "INSERT INTO attempts (id, app_id, msg_id, endpoint_id, delivery_id, url, "
      "response_status_code, response, response_duration_ms, status, trigger, request_headers, "
      "created_at) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
      "$5::text[], $6::text[], $7::int[], $8::text[], $9::bigint[], $10::smallint[], "
      "$11::smallint[], $12::text[], $13::bigint[]) AS u(id, app_id, msg_id, endpoint_id) "
      "WHERE EXISTS (SELECT 1 FROM endpoints e WHERE e.id = u.endpoint_id)",
      Params()
          .add_array(ids)
          .add_array(apps)
          .add_array(msgs)
          .add_array(endpoints)
          .add_array(deliveries)
          .add_array(urls)
          .add_array(codes)
          .add_array(responses)
          .add_array(durations)
          .add_array(statuses)
          .add_array(triggers)
          .add_array(headers)
          .add_array(times));
}

int64_t PgAttemptStore::purge(TimeMs before, int limit) {
  return x_.conn
      .query(
          "DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE id < $1 ORDER BY id "
          "LIMIT $2 FOR UPDATE SKIP LOCKED)",
          Params().add(id_lower_bound(kAttemptPrefix, before)).add(limit))
      .affected();
}

bool PgAttemptStore::expunge_response(const std::string& app_id, const std::string& id) {
  return x_.conn
             .query(
                 "UPDATE attempts SET response = '', response_expunged = true WHERE id = $1 AND "
                 "app_id = $2",
                 Params().add(id).add(app_id))
             .affected() == 1;
}

std::optional<Attempt> PgAttemptStore::get(const std::string& app_id, const std::string& id) {
  auto as = read_attempts(x_.conn.query(std::string(kColumns) + " WHERE id = $1 AND app_id = $2",
                                        Params().add(id).add(app_id)));
  if (as.empty()) return std::nullopt;
  return std::move(as.front());
}

ListPage<Attempt> PgAttemptStore::list_by_message(const std::string& app_id,
                                                  const std::string& msg_id, const ListParams& p,
                                                  const AttemptFilter& f) {
  return list(app_id, "msg_id", msg_id, p, f);
}

ListPage<Attempt> PgAttemptStore::list_by_endpoint(const std::string& app_id,
                                                   const std::string& endpoint_id,
                                                   const ListParams& p, const AttemptFilter& f) {
  return list(app_id, "endpoint_id", endpoint_id, p, f);
}

std::vector<AttemptBucket> PgAttemptStore::timeline(const std::string& endpoint_id, TimeMs start,
                                                    TimeMs until, int64_t bucket_ms) {
  auto r = x_.conn.query(
      "SELECT (created_at - $1) / $2 AS b, count(*) FILTER (WHERE status = 0), count(*) FILTER "
      "(WHERE status <> 0) FROM attempts WHERE endpoint_id = $3 AND id >= $4 AND id < $5 AND "
      "created_at >= $6 AND created_at < $7 GROUP BY b ORDER BY b",
      Params()
          .add(start)
          .add(bucket_ms)
          .add(endpoint_id)
          .add(id_lower_bound(kAttemptPrefix, start))
          .add(id_lower_bound(kAttemptPrefix, until))
          .add(start)
          .add(until));
  std::vector<AttemptBucket> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(AttemptBucket{r.get_int(i, 0), r.get_int(i, 1), r.get_int(i, 2)});
  }
  return out;
}

std::optional<Attempt> PgAttemptStore::latest(const std::string& endpoint_id) {
  auto as = read_attempts(
      x_.conn.query(std::string(kColumns) + " WHERE endpoint_id = $1 ORDER BY id DESC LIMIT 1",
                    Params().add(endpoint_id)));
  if (as.empty()) return std::nullopt;
  return std::move(as.front());
}

ListPage<Attempt> PgAttemptStore::list(const std::string& app_id, const char* key_col,
                                       const std::string& key, const ListParams& p,
                                       const AttemptFilter& f) {
  Sql q;
  q.text = std::string(kColumns) + " WHERE app_id = " + q.arg(app_id) + " AND " + key_col + " = " +
           q.arg(key);
  if (f.status) q.text += " AND status = " + q.arg(static_cast<int>(*f.status));
  if (f.endpoint_id) q.text += " AND endpoint_id = " + q.arg(*f.endpoint_id);
  if (f.status_code_class) {
    q.text += " AND response_status_code >= " + q.arg(*f.status_code_class) +
              " AND response_status_code < " + q.arg(*f.status_code_class + 100);
  }
  if (f.filters_messages()) {
    q.text += " AND msg_id IN (SELECT m.id FROM messages m WHERE m.app_id = attempts.app_id";
    if (f.event_types && !f.event_types->empty()) {
      q.text += " AND m.event_type = ANY(" + q.array_arg(*f.event_types) + "::text[])";
    }
    if (f.channel) q.text += " AND m.channels::jsonb ? " + q.arg(*f.channel);
    if (f.tag) q.text += " AND m.tags::jsonb ? " + q.arg(*f.tag);
    q.text += ")";
  }
  if (f.before) q.text += " AND id < " + q.arg(id_lower_bound(kAttemptPrefix, *f.before));
  if (f.after) q.text += " AND id >= " + q.arg(id_lower_bound(kAttemptPrefix, *f.after + 1));
  auto k = keyset_sql("id", true, p, p.cursor ? q.arg(*p.cursor) : std::string());
  q.text += k.where + k.order + " LIMIT " + q.arg(p.limit + 1);
  return finish_page(read_attempts(x_.conn.query(q.text, q.params)), p);
}

}  // namespace herald::pg
