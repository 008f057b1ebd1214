#include "api/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "api/errors.h"
#include "api/json_mapping.h"
#include "api/openapi_document.h"
#include "core/ascii.h"
#include "core/encoding.h"
#include "core/heap.h"
#include "core/ids.h"
#include "core/metrics.h"
#include "core/time_format.h"
#include "db/app_store.h"
#include "db/database.h"
#include "db/enqueue.h"
#include "db/errors.h"
#include "db/idempotency_store.h"
#include "db/queue_store.h"
#include "db/session.h"
#include "db/task_store.h"
#include "db/token_store.h"
#include "db/write_batcher.h"

namespace herald {

using json = nlohmann::ordered_json;

namespace {

constexpr int kMaxListLimit = 250;
void write_reply(http::Response& res, const ApiReply& reply) {
  res.status = reply.status;
  for (const auto& [name, value] : reply.headers) res.set_header(name, value);
  if (reply.status == 204) return;
  res.set_content(reply.body.dump(), "application/json");
}

ApiReply error_reply(const ApiError& e) {
  return ApiReply{e.status(), e.body(), {}};
}

// How long a client is asked to wait before trying again when the store is unavailable.
constexpr const char* kUnavailableRetryAfterS = "1";

// 503 with Retry-After: the request may succeed if sent again later; nothing was written.
ApiReply unavailable_reply(const std::string& detail) {
  ApiReply reply = error_reply(ApiError(503, "unavailable", detail));
  reply.headers.emplace_back("Retry-After", kUnavailableRetryAfterS);
  return reply;
}

// The reply for a storage failure: 409 for a conflict, 503 (and Retry-After) while the store
// cannot be reached or written, else 500. Nothing was written: the request can be repeated.
ApiReply db_error_reply(const DbError& e, const http::Request& req) {
  if (e.is_constraint()) return error_reply(conflict("a resource with this identifier exists"));
  spdlog::error("api {} {}: {}", req.method, req.path, e.what());
  if (e.is_unavailable())
    return unavailable_reply("the store is unavailable right now; try again shortly");
  return error_reply(ApiError(500, "internal", "internal server error"));
}

}  // namespace

std::string ApiRequest::param(int i) const {
  return http.matches[static_cast<size_t>(i)].str();  // over the decoded path
}

std::optional<std::string> ApiRequest::query(const std::string& name) const {
  if (!http.has_param(name)) return std::nullopt;
  return http.param(name);
}

ListParams ApiRequest::list_params(std::string_view id_prefix) const {
  ListParams p;
  if (auto limit = query("limit")) {
    int n = 0;
    try {
      size_t used = 0;
      n = std::stoi(*limit, &used);
      if (used != limit->size()) n = 0;
    } catch (...) {
      n = 0;
    }
    if (n < 1 || n > kMaxListLimit) {
      throw invalid_query("limit", "must be an integer from 1 to " + std::to_string(kMaxListLimit));
    }
    p.limit = n;
  }
  if (auto it = query("iterator"); it && !it->empty()) {
    if (it->front() == '-') {
      p.backwards = true;
      p.cursor = it->substr(1);
    } else {
      p.cursor = *it;
    }
    const bool fits =
        id_prefix.empty() ? valid_name(*p.cursor) : is_id_with_prefix(*p.cursor, id_prefix);
    if (!fits) {
      throw invalid_query("iterator",
                          "must be the iterator or prevIterator of a page of this list");
    }
  }
  return p;
}

bool ApiRequest::query_bool(const std::string& name, bool fallback) const {
  auto v = query(name);
  if (!v) return fallback;
  if (*v == "true" || *v == "1") return true;
  if (*v == "false" || *v == "0") return false;
  throw invalid_query(name, "must be true or false");
}

std::optional<TimeMs> ApiRequest::query_time(const std::string& name) const {
  auto v = query(name);
  if (!v) return std::nullopt;
  auto t = parse_rfc3339(*v);
  if (!t) throw invalid_query(name, "must be an RFC 3339 date-time");
  return t;
}

std::optional<std::vector<std::string>> ApiRequest::query_list(const std::string& name) const {
  const auto v = query(name);
  if (!v || v->empty()) return std::nullopt;
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= v->size()) {
    size_t comma = v->find(',', start);
    std::string item =
        v->substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::optional<DeliveryStatus> ApiRequest::query_status(const std::string& name) const {
  const auto v = query(name);
  if (!v) return std::nullopt;
  if (v->size() != 1 || (*v)[0] < '0' || (*v)[0] > '4') {
    throw invalid_query(name,
                        "must be 0 (success), 1 (pending), 2 (fail), 3 (sending) or 4 (canceled)");
  }
  return static_cast<DeliveryStatus>((*v)[0] - '0');
}

std::optional<bool> ApiRequest::query_descending() const {
  const auto v = query("order");
  if (!v) return std::nullopt;
  if (*v == "ascending") return false;
  if (*v == "descending") return true;
  throw invalid_query("order", "must be ascending or descending");
}

bool Caller::may_see(const EventType& et) const {
  if (is_admin() || !et.feature_flags) return true;
  return std::all_of(et.feature_flags->begin(), et.feature_flags->end(), [&](const auto& flag) {
    return std::find(feature_flags.begin(), feature_flags.end(), flag) != feature_flags.end();
  });
}

Application load_app(Session& c, const Caller& caller, const std::string& key) {
  auto app = c.apps().get(key);
  if (!app || (caller.app_id && *caller.app_id != app->id)) throw not_found("application");
  return *app;
}

void require_admin(const Caller& caller) {
  if (!caller.is_admin()) throw not_found("resource");
}

json list_json(json data, const std::string& first_id, const std::string& last_id, bool done,
               const ListParams& p) {
  json out{{"data", std::move(data)}};
  bool empty = out["data"].empty();
  out["iterator"] = empty ? (p.cursor ? json(*p.cursor) : json(nullptr)) : json(last_id);
  out["prevIterator"] = empty ? json(nullptr) : json("-" + first_id);
  out["done"] = p.backwards ? false : done;
  return out;
}

ApiServer::ApiServer(Database& db, Clock& clock, ApiOptions options)
    : db_(db),
      clock_(clock),
      options_(std::move(options)),
      writer_(std::make_unique<WriteBatcher>(db)),
      enqueuer_(std::make_unique<Enqueuer>(clock)),
      http_(std::make_unique<http::Server>([&] {
        http::Limits l = options_.limits;
        // Bodies a little over the limit still reach dispatch, so the 413 says which limit.
        l.max_body_bytes = options_.max_payload_bytes + 64 * 1024;
        return l;
      }())) {
  // What the HTTP server answers itself (malformed requests, limits, no route) is API JSON too.
  http_->set_error_renderer([](int status, std::string_view code, std::string_view detail) {
    http::Response res;
    res.status = status;
    res.set_content(ApiError(status, std::string(code), std::string(detail)).body().dump(),
                    "application/json");
    return res;
  });
  route("GET", "/api/v1/health/?", [](ApiRequest&) { return ApiReply{204, {}}; });
  // The API's own description (api/openapi.json), without a token: it holds no one's data.
  http_->route("GET", "/api/v1/openapi.json", [](const http::Request&, http::Response& res) {
    res.set_content(std::string(openapi_document()), "application/json");
  });
  if (options_.metrics != nullptr) {
    // Prometheus text format, without a token: aggregate counts only, nothing per app.
    http_->route("GET", "/metrics", [this](const http::Request&, http::Response& res) {
      Metrics::Gauges g;
      const TimeMs now = clock_.now_ms();
      try {
        auto session = db_.session();
        auto q = session->queue().state(now);
        g.in_flight = options_.metrics->in_flight();
        g.pending = std::max<int64_t>(0, q.queued + q.parked - q.sending.value_or(g.in_flight));
        g.queue_lag_s = q.oldest_due ? static_cast<double>(now - *q.oldest_due) / 1000.0 : 0.0;
        g.sqlite_memory_bytes = db_.memory_used();
        if (auto heap = heap_figures()) {
          g.heap_in_use_bytes = heap->in_use;
          g.heap_free_bytes = heap->free;
        }
      } catch (const std::exception& e) {
        spdlog::error("metrics: {}", e.what());
        res.status = 500;
        res.set_content("# the queue could not be read\n", "text/plain");
        return;
      }
      res.set_content(options_.metrics->render(g), "text/plain; version=0.0.4; charset=utf-8");
    });
  }
  register_app_routes(*this);
  register_endpoint_routes(*this);
  register_operational_webhook_routes(*this);
  register_event_type_routes(*this);
  register_message_routes(*this);
  register_attempt_routes(*this);
  register_auth_routes(*this);
  register_environment_routes(*this);
  register_task_routes(*this);
}

ApiServer::~ApiServer() {
  stop();
}

int ApiServer::bind(const std::string& host, int port) {
  const int bound = http_->bind(host, port);
  if (bound > 0) bound_url_ = "http://" + host + ":" + std::to_string(bound);
  return bound;
}

bool ApiServer::listen() {
  return http_->listen();
}

void ApiServer::stop() {
  http_->stop();
}

bool ApiServer::running() const {
  return http_->running();
}

std::optional<ApiReply> ApiServer::intake_refusal() const {
  auto why = db_.intake_paused();
  if (!why) return std::nullopt;
  return unavailable_reply(*why + "; messages already accepted are still being delivered");
}

ApiReply ApiServer::start_task(const BackgroundTask& t) {
  db_.session()->tasks().insert(t);
  spdlog::info("background task {} ({}) created", t.id, t.kind);
  if (options_.wake_tasks) options_.wake_tasks();
  return ApiReply{202, to_json(t)};
}

void ApiServer::count_accepted() {
  if (options_.metrics != nullptr) options_.metrics->message_accepted();
}

std::string ApiServer::base_url() const {
  return options_.public_url.empty() ? bound_url_ : options_.public_url;
}

void ApiServer::route(const std::string& method, const std::string& pattern, ApiHandler h) {
  http_->route(method, pattern,
               [this, h = std::move(h)](const http::Request& req, http::Response& res) {
                 write_reply(res, dispatch(req, h));
               });
}

Caller ApiServer::authenticate(const http::Request& req) {
  const std::string header = req.header("Authorization");
  // "Bearer <token>": the scheme in any case (RFC 9110 11.1), then one or more spaces.
  constexpr std::string_view kBearer = "bearer";
  std::string_view credentials(header);
  const bool bearer = credentials.size() > kBearer.size() && credentials[kBearer.size()] == ' ' &&
                      starts_with_ascii_ci(credentials, kBearer);
  if (bearer) {
    const size_t start = credentials.find_first_not_of(' ', kBearer.size());
    credentials = start == std::string_view::npos ? std::string_view() : credentials.substr(start);
  }
  if (!bearer || credentials.empty() || credentials.find(' ') != std::string_view::npos) {
    throw ApiError(401, "authentication_failed", "missing or malformed bearer token");
  }
  // Only hashes are stored. The lookup is by hash, so its timing says nothing about the token;
  // the comparison after it is constant-time all the same.
  std::string hash = sha256(credentials);
  auto session = db_.session();
  auto token = session->tokens().find_by_hash(hash);
  if (!token || !constant_time_equal(token->hash, hash) ||
      (token->expires_at && *token->expires_at <= clock_.now_ms())) {
    throw ApiError(401, "authentication_failed", "invalid or expired token");
  }
  return Caller{token->id, token->app_id, token->read_only, token->expires_at,
                std::move(token->feature_flags)};
}

ApiReply ApiServer::dispatch(const http::Request& req, const ApiHandler& h) {
  auto run = [&](ApiRequest& r) -> ApiReply {
    try {
      return h(r);
    } catch (const ApiError& e) {
      return error_reply(e);
    } catch (const DbError& e) {
      return db_error_reply(e, req);
    } catch (const std::exception& e) {
      spdlog::error("api {} {}: {}", req.method, req.path, e.what());
      return error_reply(ApiError(500, "internal", "internal server error"));
    }
  };
  try {
    Caller caller = req.path.rfind("/api/v1/health", 0) == 0 ? Caller{} : authenticate(req);
    // A read-only token may still end its own session.
    if (caller.read_only && req.method != "GET" && req.path.rfind("/api/v1/auth/logout", 0) != 0) {
      throw ApiError(403, "forbidden", "this token is read-only: it may only make GET requests");
    }
    nlohmann::ordered_json body;
    if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
      if (req.body.size() > options_.max_payload_bytes) {
        throw ApiError(
            413, "payload_too_large",
            "request body exceeds " + std::to_string(options_.max_payload_bytes) + " bytes");
      }
      if (req.body.empty()) {
        body = nlohmann::ordered_json::object();
      } else {
        std::string problem;
        auto parsed = parse_client_json(req.body, "the body", problem);
        if (!parsed) throw bad_request(problem);
        body = std::move(*parsed);
      }
    }
    ApiRequest r{req, caller, std::move(body)};
    const std::string key = req.header("idempotency-key");
    if (req.method != "POST" || key.empty()) return run(r);
    if (key.size() > 256) throw bad_request("idempotency-key must be at most 256 characters");

    // Replay the first success for (token, key, path); run at most one request at a time.
    const std::string& path = req.path;
    IdempotencyClaim claim;
    for (int tries = 0; tries < 100; ++tries) {
      {
        auto session = db_.session();
        TimeMs now = clock_.now_ms();
        claim = session->idempotency().claim(caller.token_id, key, path, now,
                                             now - options_.idempotency_ttl_ms);
      }
      if (claim.state != IdempotencyClaim::State::kInProgress) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (claim.state == IdempotencyClaim::State::kCompleted) {
      return ApiReply{claim.status_code, claim.body.empty() ? json() : json::parse(claim.body)};
    }
    if (claim.state == IdempotencyClaim::State::kInProgress) {
      throw conflict("a request with this idempotency key is still in progress");
    }
    ApiReply reply = run(r);
    auto session = db_.session();
    if (reply.status >= 200 && reply.status < 300 && reply.replayable) {
      session->idempotency().complete(caller.token_id, key, path, reply.status,
                                      reply.status == 204 ? std::string() : reply.body.dump());
    } else {
      session->idempotency().release(caller.token_id, key, path);
    }
    return reply;
  } catch (const ApiError& e) {
    return error_reply(e);
  } catch (const DbError& e) {
    return db_error_reply(e, req);
  } catch (const std::exception& e) {
    spdlog::error("api {} {}: {}", req.method, req.path, e.what());
    return error_reply(ApiError(500, "internal", "internal server error"));
  }
}

}  // namespace herald
