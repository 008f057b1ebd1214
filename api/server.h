#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/http/server.h"
#include "core/clock.h"
#include "core/types.h"
#include "db/list.h"
#include "db/task_store.h"

namespace herald {

class Database;
class Enqueuer;
class EventTypeStore;
class Metrics;
class Session;
class WriteBatcher;

struct ApiOptions {
  size_t max_payload_bytes = 1 << 20;  // largest accepted request body
  // What one client may cost (connections, deadlines). max_body_bytes is set from
  // max_payload_bytes.
  http::Limits limits;
  std::string public_url;  // base of links herald hands out; "" = the listen URL
  int64_t idempotency_ttl_ms = 12LL * 3600 * 1000;
  bool https_only = false;  // endpoint URLs must be https:// (else 422)
  // Counters for GET /metrics (served without a token); null: no /metrics. Must outlive the
  // server.
  Metrics* metrics = nullptr;
  // Told when a background task was made (the TaskRunner's wake()); empty: none runs here.
  std::function<void()> wake_tasks;
};

// Who is calling: an admin token, or a token scoped to one application.
struct Caller {
  std::string token_id;
  std::optional<std::string> app_id;
  bool read_only = false;            // may only make GET requests (else 403)
  std::optional<TimeMs> expires_at;  // when the token stops working, if ever
  // The event types' feature flags granted (see may_see); admins see every event type.
  std::vector<std::string> feature_flags = {};
  bool is_admin() const { return !app_id; }
  // Whether the caller may see `et`: an admin always, else when granted all of its flags.
  bool may_see(const EventType& et) const;
};

// One API request as handlers see it.
struct ApiRequest {
  const http::Request& http;
  Caller caller;
  nlohmann::ordered_json body;  // the parsed JSON body, keys in sent order (null for GET/DELETE)

  // Path capture `i` (1-based), URL-decoded.
  std::string param(int i) const;
  std::optional<std::string> query(const std::string& name) const;
  // Reads limit/iterator. Throws 422 for a bad limit, or an iterator that no page of this
  // list could have returned: one that is not an id with `id_prefix` (an event type's name,
  // when `id_prefix` is empty), "-" before it for the previous page.
  ListParams list_params(std::string_view id_prefix) const;
  // A boolean query parameter ("true"/"false"); `fallback` when absent.
  bool query_bool(const std::string& name, bool fallback) const;
  // An RFC 3339 query parameter; throws 422 when malformed.
  std::optional<TimeMs> query_time(const std::string& name) const;
  // A comma-separated query parameter's items (empty ones dropped); nullopt when absent or
  // empty.
  std::optional<std::vector<std::string>> query_list(const std::string& name) const;
  // Svix's MessageStatus as a query parameter: 0 success, 1 pending, 2 fail, 3 sending, 4
  // canceled (which herald never sets: it matches nothing). Throws 422 for anything else.
  std::optional<DeliveryStatus> query_status(const std::string& name) const;
  // Svix's `order`: "ascending" (false) or "descending" (true); nullopt when absent. Throws
  // 422 for anything else.
  std::optional<bool> query_descending() const;
};

struct ApiReply {
  int status = 200;
  nlohmann::ordered_json body;                                    // ignored for 204
  std::vector<std::pair<std::string, std::string>> headers = {};  // beyond Content-Type
  // False for replies holding a secret (a new token): an idempotency key then does not keep
  // the reply for replay, so it is never written to the database.
  bool replayable = true;
};

using ApiHandler = std::function<ApiReply(ApiRequest&)>;

// herald's REST API (Svix v1 compatible) on http::Server. Owns the HTTP server; the database
// and clock must outlive it. It reaches the queue only by enqueueing (Enqueuer): the
// database's QueueListener, the scheduler, hears of what it enqueues.
class ApiServer {
 public:
  ApiServer(Database& db, Clock& clock, ApiOptions options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds; port 0 picks a free port. Returns the bound port, or -1 on failure.
  int bind(const std::string& host, int port);
  // Serves until stop(). Blocks.
  bool listen();
  void stop();
  bool running() const;

  // Registers a route. `pattern` is a regex over the path; captures become params.
  // Requests are authenticated, bodies parsed and POSTs made idempotent before `h` runs.
  void route(const std::string& method, const std::string& pattern, ApiHandler h);

  // For routes outside the API (the portal): registered before listen().
  http::Server& http() { return *http_; }
  Database& db() { return db_; }
  // Group commit for the hot write path (message creation).
  WriteBatcher& writer() { return *writer_; }
  // Creates messages and deliveries.
  Enqueuer& enqueuer() { return *enqueuer_; }
  Clock& clock() { return clock_; }
  const ApiOptions& options() const { return options_; }
  // The 503 (with Retry-After) for a request that would make new messages or deliveries while
  // the store cannot take them (Database::intake_paused); nullopt when it can. Every route that
  // enqueues asks first.
  std::optional<ApiReply> intake_refusal() const;
  // Writes the new background task `t`, tells the runner, and replies 202 with it (Svix's
  // BackgroundTaskOut, which RecoverOut, ReplayOut and the others share).
  ApiReply start_task(const BackgroundTask& t);
  // Counts an accepted message for /metrics.
  void count_accepted();
  // The base URL for links: options().public_url or the bound address.
  std::string base_url() const;

 private:
  ApiReply dispatch(const http::Request& req, const ApiHandler& h);
  Caller authenticate(const http::Request& req);

  Database& db_;
  Clock& clock_;
  ApiOptions options_;
  std::unique_ptr<WriteBatcher> writer_;
  std::unique_ptr<Enqueuer> enqueuer_;
  std::unique_ptr<http::Server> http_;
  std::string bound_url_;
};

// Looks up the application named by `key` (id or uid) as `caller` may see it; throws 404.
Application load_app(Session& c, const Caller& caller, const std::string& key);
// Writes `et` over the stored event type of its name, keeping that one's createdAt, or
// inserts it; true if it existed.
bool upsert_event_type(EventTypeStore& store, EventType& et);
// Throws 404 unless `caller` is an admin.
void require_admin(const Caller& caller);
// {data, iterator, prevIterator, done} of a page of already-mapped items.
nlohmann::ordered_json list_json(nlohmann::ordered_json data, const std::string& first_id,
                                 const std::string& last_id, bool done, const ListParams& p);

void register_app_routes(ApiServer& s);
void register_endpoint_routes(ApiServer& s);
void register_operational_webhook_routes(ApiServer& s);
void register_event_type_routes(ApiServer& s);
void register_message_routes(ApiServer& s);
void register_attempt_routes(ApiServer& s);
void register_auth_routes(ApiServer& s);
void register_environment_routes(ApiServer& s);
void register_task_routes(ApiServer& s);

}  // namespace herald
