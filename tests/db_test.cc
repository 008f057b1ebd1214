// Tests of the storage layer through its interfaces (Database, Session and the stores) against
// the store HERALD_TEST_STORE selects (tests/support/store.h), so that one binary checks every
// backend. The "sqlite" suite holds what is about the SQLite backend itself: its file, its
// PRAGMAs, its migrations and its queue hand-over; a PostgreSQL run leaves it out.

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/encoding.h"
#include "core/ids.h"
#include "core/secret_box.h"
#include "core/types.h"
#include "db/app_store.h"
#include "db/attempt_store.h"
#include "db/copy.h"
#include "db/database.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/enqueue.h"
#include "db/errors.h"
#include "db/event_type_store.h"
#include "db/idempotency_store.h"
#include "db/inventory.h"
#include "db/list.h"
#include "db/message_store.h"
#include "db/postgres/connection.h"
#include "db/postgres/migrations.h"
#include "db/queue_store.h"
#include "db/sealing.h"
#include "db/session.h"
#include "db/sqlite/connection.h"
#include "db/sqlite/database.h"
#include "db/sqlite/file_lock.h"
#include "db/sqlite/migrations.h"
#include "db/task_store.h"
#include "db/tasks.h"
#include "db/token_store.h"
#include "db/write_batcher.h"
#include "tests/support/fixtures.h"
#include "tests/support/sqlite.h"
#include "tests/support/store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

using namespace herald;
using namespace herald::test;
using namespace std::string_literals;

namespace {

namespace fs = std::filesystem;

constexpr const char* kUrl = "https://example.com/hook";

TimeMs wall_now() {
  return SystemClock().now_ms();
}

// True if `f` throws a DbError that is a constraint violation; false if it throws nothing.
// Any other exception propagates and fails the test.
bool throws_constraint(const std::function<void()>& f) {
  try {
    f();
  } catch (const DbError& e) {
    return e.is_constraint();
  }
  return false;
}

// Rows built but not written, for tests of the stores' own inserts (tests/support/fixtures.h
// writes the rows a test only needs to exist).
Endpoint make_endpoint(const std::string& app_id, TimeMs now, std::optional<std::string> uid,
                       std::string url = kUrl) {
  Endpoint e;
  e.id = new_id(kEndpointPrefix, now);
  e.app_id = app_id;
  e.uid = std::move(uid);
  e.url = std::move(url);
  e.created_at = e.updated_at = now;
  return e;
}

Message make_message(const std::string& app_id, TimeMs now, std::string event_type,
                     std::optional<std::string> event_id = std::nullopt,
                     std::optional<std::vector<std::string>> channels = std::nullopt) {
  Message m;
  m.id = new_id(kMessagePrefix, now);
  m.app_id = app_id;
  m.event_id = std::move(event_id);
  m.event_type = std::move(event_type);
  m.payload = R"({"type":")" + m.event_type + R"(","n": 1})";
  m.channels = std::move(channels);
  m.timestamp = now;
  return m;
}

Attempt make_attempt(const Delivery& d, TimeMs now, DeliveryStatus status, int code) {
  Attempt a;
  a.id = new_id(kAttemptPrefix, now);
  a.app_id = d.app_id;
  a.msg_id = d.msg_id;
  a.endpoint_id = d.endpoint_id;
  a.delivery_id = d.id;
  a.url = kUrl;
  a.response_status_code = code;
  a.response = "body " + std::to_string(code);
  a.response_duration_ms = 12;
  a.status = status;
  a.request_headers_json = R"({"webhook-id":")" + d.msg_id + R"("})";
  a.timestamp = now;
  return a;
}

template <typename T>
std::vector<std::string> ids_of(const std::vector<T>& items) {
  std::vector<std::string> out;
  for (const auto& i : items) out.push_back(i.id);
  return out;
}

// Claims come back in no particular order: compare their ids as sets.
std::set<std::string> id_set(const std::vector<Delivery>& ds) {
  std::set<std::string> out;
  for (const auto& d : ds) out.insert(d.id);
  return out;
}

std::vector<std::string> names_of(const std::vector<EventType>& items) {
  std::vector<std::string> out;
  for (const auto& i : items) out.push_back(i.name);
  return out;
}

// Every item of a keyset-paged list, read in pages: `list(p)` reads the page `p` asks for.
template <typename List>
auto all_pages(const List& list) {
  ListParams p;
  p.limit = 100;
  decltype(list(p).items) out;
  for (;;) {
    auto page = list(p);
    out.insert(out.end(), page.items.begin(), page.items.end());
    if (page.done || page.items.empty()) return out;
    p.cursor = page.items.back().id;
  }
}

// Claims what is due at `now` in a transaction of its own.
std::vector<Delivery> claim_due(Session& s, TimeMs now, int64_t lease_ms, int limit = 10) {
  s.begin();
  auto out = s.queue().claim(now, lease_ms, limit);
  s.commit();
  return out;
}

// An action for Session::on_outcome that notes `what` in `*ran`.
std::function<void()> note(std::vector<std::string>* ran, std::string what) {
  return [ran, what = std::move(what)] { ran->push_back(what); };
}

// A QueueListener that grants up to `room` deliveries in all (released room comes back) and
// records what it is told. Thread-safe: the write batcher calls it from its thread.
class FakeListener final : public QueueListener {
 public:
  static constexpr int64_t kLeaseMs = 30'000;

  struct HandOver {
    std::vector<Delivery> deliveries;
    std::shared_ptr<const std::string> payload;
  };
  struct Calls {
    int wakes = 0;
    int asked = 0;     // deliveries reserve() was asked room for
    int reserved = 0;  // room it granted
    int released = 0;  // room given back
    int releases = 0;  // release() calls
    std::vector<HandOver> handed;
  };

  explicit FakeListener(int room) : room_(room) {}

  void wake() override {
    std::lock_guard lock(mu_);
    ++calls_.wakes;
  }
  int reserve(int n) override {
    std::lock_guard lock(mu_);
    const int granted = std::clamp(room_, 0, n);
    room_ -= granted;
    calls_.asked += n;
    calls_.reserved += granted;
    return granted;
  }
  void release(int n) override {
    std::lock_guard lock(mu_);
    room_ += n;
    calls_.released += n;
    ++calls_.releases;
  }
  void hand_over(std::vector<Delivery> deliveries,
                 std::shared_ptr<const std::string> payload) override {
    if (on_hand_over) on_hand_over(deliveries);
    std::lock_guard lock(mu_);
    calls_.handed.push_back(HandOver{std::move(deliveries), std::move(payload)});
  }
  int64_t lease_ms() const override { return kLeaseMs; }

  Calls calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  // Deliveries handed over so far.
  std::set<std::string> handed_ids() const {
    std::set<std::string> out;
    for (const auto& h : calls().handed) {
      for (const auto& d : h.deliveries) out.insert(d.id);
    }
    return out;
  }

  // Runs first in every hand_over(). Set it before the listener is registered.
  std::function<void(const std::vector<Delivery>&)> on_hand_over;

 private:
  mutable std::mutex mu_;
  int room_;     // REQUIRES: mu_ held
  Calls calls_;  // REQUIRES: mu_ held
};

// Registers `listener` on `db` while alive.
class Listening {
 public:
  Listening(Database& db, QueueListener& listener) : db_(db) { db_.set_queue_listener(&listener); }
  ~Listening() { db_.set_queue_listener(nullptr); }
  Listening(const Listening&) = delete;
  Listening& operator=(const Listening&) = delete;

 private:
  Database& db_;
};

// An application whose `n` endpoints take every message.
struct Fanout {
  Application app;
  std::vector<Endpoint> endpoints;
};

Fanout add_fanout(Database& db, TimeMs now, int n) {
  auto s = db.session();
  Fanout f;
  f.app = add_app(*s, now);
  for (int i = 0; i < n; ++i) {
    f.endpoints.push_back(add_endpoint(*s, f.app.id, kUrl, "key-" + std::to_string(i), now));
  }
  return f;
}

bool has_column(sqlite::Connection& c, const std::string& table, const std::string& column) {
  return scalar(c, "SELECT count(*) FROM pragma_table_info('" + table + "') WHERE name = '" +
                       column + "'") == 1;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Session: transactions, savepoints and their outcome actions

TEST_CASE("Session: a transaction commits or rolls back as a whole and runs the matching actions") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  const TimeMs now = wall_now();
  std::vector<std::string> ran;
  CHECK_FALSE(s->in_transaction());

  SUBCASE("rollback") {
    s->begin();
    CHECK(s->in_transaction());
    const auto app = add_app(*s, now);
    CHECK(s->apps().get(app.id).has_value());  // visible inside the transaction
    s->on_outcome(note(&ran, "commit 1"), note(&ran, "rollback 1"));
    s->on_outcome(note(&ran, "commit 2"), note(&ran, "rollback 2"));
    s->on_outcome(note(&ran, "commit 3"), {});
    CHECK(ran.empty());
    s->rollback();
    CHECK_FALSE(s->in_transaction());
    CHECK(ran == std::vector<std::string>{"rollback 2", "rollback 1"});  // the last one first
    CHECK_FALSE(s->apps().get(app.id).has_value());
    CHECK_FALSE(db->session()->apps().get(app.id).has_value());
    s->rollback();  // none open: nothing happens
    CHECK(ran.size() == 2);
  }
  SUBCASE("destroying a session rolls its transaction back") {
    std::string id;
    {
      auto t = db->begin();
      id = add_app(*t, now).id;
      t->on_outcome(note(&ran, "commit"), note(&ran, "rollback"));
    }
    CHECK(ran == std::vector<std::string>{"rollback"});
    CHECK_FALSE(s->apps().get(id).has_value());
  }
  SUBCASE("an exception unwinds the session and its transaction") {
    std::string id;
    CHECK_THROWS_AS(
        [&] {
          auto t = db->begin();
          id = add_app(*t, now).id;
          t->on_outcome(note(&ran, "commit"), note(&ran, "rollback"));
          throw std::runtime_error("boom");
        }(),
        std::runtime_error);
    CHECK(ran == std::vector<std::string>{"rollback"});
    CHECK_FALSE(s->apps().get(id).has_value());
  }
  SUBCASE("commit") {
    s->begin();
    const auto app = add_app(*s, now);
    bool seen_by_another_session = false;
    s->on_outcome(
        [&] {
          ran.push_back("commit 1");
          seen_by_another_session = db->session()->apps().get(app.id).has_value();
        },
        note(&ran, "rollback 1"));
    s->on_outcome(note(&ran, "commit 2"), note(&ran, "rollback 2"));
    s->on_outcome({}, note(&ran, "rollback 3"));
    CHECK_FALSE(db->session()->apps().get(app.id).has_value());  // not before the commit
    s->commit();
    CHECK_FALSE(s->in_transaction());
    CHECK(ran == std::vector<std::string>{"commit 1", "commit 2"});  // in order
    CHECK(seen_by_another_session);  // the actions run once the commit is done
    CHECK(db->session()->apps().get(app.id).has_value());
    // The actions belonged to that transaction: the next one starts with none.
    s->begin();
    s->rollback();
    CHECK(ran.size() == 2);
  }
  SUBCASE("misuse is refused") {
    CHECK_THROWS_AS(s->commit(), std::logic_error);
    CHECK_THROWS_AS(s->on_outcome(note(&ran, "c"), note(&ran, "r")), std::logic_error);
    CHECK_THROWS_AS(s->savepoint(), std::logic_error);
    s->begin();
    CHECK_THROWS_AS(s->begin(), std::logic_error);
    CHECK_THROWS_AS(s->release_savepoint(), std::logic_error);
    CHECK_THROWS_AS(s->rollback_to_savepoint(), std::logic_error);
    CHECK(s->in_transaction());
    s->rollback();
    CHECK(ran.empty());
  }
}

TEST_CASE("Session savepoints undo only their own work and actions") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  const TimeMs now = wall_now();
  std::vector<std::string> ran;
  const auto exists = [&](const Application& a) { return s->apps().get(a.id).has_value(); };

  s->begin();
  const auto a = add_app(*s, now, "a", "a");
  s->on_outcome(note(&ran, "commit a"), note(&ran, "rollback a"));
  s->savepoint();
  const auto b = add_app(*s, now, "b", "b");
  s->on_outcome(note(&ran, "commit b"), note(&ran, "rollback b"));
  s->rollback_to_savepoint();
  CHECK(ran == std::vector<std::string>{"rollback b"});
  CHECK(exists(a));
  CHECK_FALSE(exists(b));

  // A failed statement inside a savepoint, rolled back to it, leaves the transaction usable.
  s->savepoint();
  CHECK(throws_constraint([&] { add_app(*s, now, "dup", "a"); }));
  s->rollback_to_savepoint();

  // Nested: the inner one rolled back, the outer one released with its work and actions.
  s->savepoint();
  const auto c = add_app(*s, now, "c", "c");
  s->on_outcome(note(&ran, "commit c"), note(&ran, "rollback c"));
  s->savepoint();
  const auto d = add_app(*s, now, "d", "d");
  s->on_outcome(note(&ran, "commit d"), note(&ran, "rollback d"));
  s->rollback_to_savepoint();
  s->release_savepoint();
  CHECK(ran == std::vector<std::string>{"rollback b", "rollback d"});
  CHECK(exists(c));
  CHECK_FALSE(exists(d));

  SUBCASE("the transaction commits what its savepoints kept") {
    s->commit();
    CHECK(ran == std::vector<std::string>{"rollback b", "rollback d", "commit a", "commit c"});
    auto other = db->session();
    CHECK(other->apps().get(a.id).has_value());
    CHECK(other->apps().get(c.id).has_value());
    CHECK_FALSE(other->apps().get(b.id).has_value());
    CHECK_FALSE(other->apps().get(d.id).has_value());
    CHECK(other->apps().get_by_uid("a")->id == a.id);
    CHECK_FALSE(other->apps().get_by_uid("b").has_value());
  }
  SUBCASE("a rollback of the transaction undoes released savepoints too") {
    s->rollback();
    CHECK(ran == std::vector<std::string>{"rollback b", "rollback d", "rollback c", "rollback a"});
    CHECK_FALSE(exists(a));
    CHECK_FALSE(exists(c));
  }
}

// ---------------------------------------------------------------------------------------------
// AppStore

TEST_CASE("AppStore insert, get by id and uid, update") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  AppStore& apps = s->apps();
  const TimeMs now = wall_now();
  Application a;
  a.id = new_id(kAppPrefix, now);
  a.uid = "my-uid";
  a.name = "First";
  a.throttle_rate = 7;
  a.metadata = {{"k", "v"}, {"x", "y"}};
  a.created_at = a.updated_at = now;
  apps.insert(a);

  auto by_id = apps.get(a.id);
  REQUIRE(by_id);
  CHECK(by_id->id == a.id);
  CHECK(by_id->uid == std::optional<std::string>("my-uid"));
  CHECK(by_id->name == "First");
  CHECK(by_id->throttle_rate == std::optional<int>(7));
  CHECK(by_id->metadata == a.metadata);
  CHECK(by_id->created_at == now);
  CHECK(by_id->updated_at == now);

  auto by_uid = apps.get("my-uid");
  REQUIRE(by_uid);
  CHECK(by_uid->id == a.id);
  REQUIRE(apps.get_by_uid("my-uid"));
  CHECK_FALSE(apps.get("no-such-uid"));
  CHECK_FALSE(apps.get(new_id(kAppPrefix, now)));

  // Apps without a uid don't collide with each other.
  add_app(*s, now);
  add_app(*s, now);

  auto changed = *by_id;
  changed.name = "Renamed";
  changed.uid = "other-uid";
  changed.throttle_rate.reset();
  changed.metadata = {{"only", "this"}};
  changed.updated_at = now + 500;
  changed.created_at = now + 999;  // ignored by update
  CHECK(apps.update(changed));
  auto after = apps.get(a.id);
  REQUIRE(after);
  CHECK(after->name == "Renamed");
  CHECK(after->uid == std::optional<std::string>("other-uid"));
  CHECK_FALSE(after->throttle_rate.has_value());
  CHECK(after->metadata == changed.metadata);
  CHECK(after->updated_at == now + 500);
  CHECK(after->created_at == now);
  CHECK_FALSE(apps.get_by_uid("my-uid"));

  auto ghost = changed;
  ghost.id = new_id(kAppPrefix, now);
  ghost.uid = "ghost";
  CHECK_FALSE(apps.update(ghost));
  CHECK_FALSE(apps.get_by_uid("ghost"));
}

TEST_CASE("AppStore duplicate uid is a constraint error") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  const TimeMs now = wall_now();
  add_app(*s, now, "app", "dup");
  CHECK(throws_constraint([&] { add_app(*s, now, "app", "dup"); }));
  CHECK_THROWS_AS(add_app(*s, now, "app", "dup"), DbError);

  // Updating another app onto a taken uid is one too.
  auto b = add_app(*s, now, "b", "b");
  b.uid = "dup";
  CHECK(throws_constraint([&] { s->apps().update(b); }));
  CHECK(s->apps().get_by_uid("b").has_value());
}

TEST_CASE("AppStore list pages forwards and backwards") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  AppStore& apps = s->apps();
  const TimeMs now = wall_now();
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    ids.push_back(add_app(*s, now + i, "app", "uid-" + std::to_string(i)).id);
  }
  const auto slice = [&](size_t from, size_t to) {
    return std::vector<std::string>(ids.begin() + static_cast<long>(from),
                                    ids.begin() + static_cast<long>(to));
  };

  ListParams p;
  p.limit = 3;
  auto p1 = apps.list(p);
  CHECK(ids_of(p1.items) == slice(0, 3));
  CHECK_FALSE(p1.done);

  p.cursor = p1.items.back().id;
  auto p2 = apps.list(p);
  CHECK(ids_of(p2.items) == slice(3, 6));
  CHECK_FALSE(p2.done);

  p.cursor = p2.items.back().id;
  auto p3 = apps.list(p);
  CHECK(ids_of(p3.items) == slice(6, 7));
  CHECK(p3.done);

  p.cursor = p3.items.back().id;
  auto past_end = apps.list(p);
  CHECK(past_end.items.empty());
  CHECK(past_end.done);

  SUBCASE("backwards from the last page's first item") {
    ListParams b;
    b.limit = 3;
    b.backwards = true;
    b.cursor = p3.items.front().id;
    auto back1 = apps.list(b);
    CHECK(ids_of(back1.items) == slice(3, 6));  // still in the list's order
    CHECK_FALSE(back1.done);
    b.cursor = back1.items.front().id;
    auto back2 = apps.list(b);
    CHECK(ids_of(back2.items) == slice(0, 3));
    CHECK(back2.done);
  }
  SUBCASE("backwards without a cursor reads the last page") {
    ListParams b;
    b.limit = 3;
    b.backwards = true;
    auto last = apps.list(b);
    CHECK(ids_of(last.items) == slice(4, 7));
    CHECK_FALSE(last.done);
  }
  SUBCASE("a limit larger than the list is one done page") {
    ListParams all;
    all.limit = 50;
    auto page = apps.list(all);
    CHECK(ids_of(page.items) == ids);
    CHECK(page.done);
  }
}

TEST_CASE("AppStore remove cascades to endpoints, messages, deliveries, attempts and tokens") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  const TimeMs now = wall_now();

  const auto doomed = add_app(*s, now, "doomed", "doomed");
  const auto kept = add_app(*s, now, "kept", "kept");
  const auto ep = add_endpoint(*s, doomed.id, kUrl, "key-doomed", now);
  const auto kept_ep = add_endpoint(*s, kept.id, kUrl, "key-kept", now);
  const auto m = add_message(*s, doomed.id, R"({"n":1})", now, "a.b");
  const auto kept_m = add_message(*s, kept.id, R"({"n":2})", now, "a.b");
  const auto d = add_delivery(*s, m, ep.id, now);
  const auto kept_d = add_delivery(*s, kept_m, kept_ep.id, now);
  const auto a = make_attempt(d, now, DeliveryStatus::kFail, 500);
  const auto kept_a = make_attempt(kept_d, now, DeliveryStatus::kFail, 500);
  s->attempts().insert({a, kept_a});
  s->tokens().insert(TokenRecord{
      new_id(kTokenPrefix, now), "hash-doomed", doomed.id, "portal", now, {}, false, std::nullopt});

  CHECK(s->apps().remove(doomed.id));
  CHECK_FALSE(s->apps().get(doomed.id));
  CHECK_FALSE(s->endpoints().get(doomed.id, ep.id));
  CHECK(s->endpoints().signing_keys(ep.id, now).empty());
  CHECK_FALSE(s->messages().get(doomed.id, m.id));
  CHECK_FALSE(s->deliveries().get(d.id));
  CHECK(s->deliveries().for_message(m.id).empty());
  const auto stats = s->deliveries().stats(ep.id);
  CHECK(stats.pending + stats.sending + stats.success + stats.fail == 0);
  CHECK_FALSE(s->attempts().get(doomed.id, a.id));
  CHECK_FALSE(s->tokens().find_by_hash("hash-doomed"));
  CHECK_FALSE(s->apps().remove(doomed.id));

  // The other app is untouched.
  CHECK(s->apps().get(kept.id));
  CHECK(s->endpoints().get(kept.id, kept_ep.id));
  CHECK(s->endpoints().current_key(kept_ep.id) == opt_hmac_key("key-kept"));
  CHECK(s->messages().get(kept.id, kept_m.id));
  CHECK(s->deliveries().get(kept_d.id));
  CHECK(s->attempts().get(kept.id, kept_a.id));
}

// ---------------------------------------------------------------------------------------------
// EndpointStore

TEST_CASE("EndpointStore insert, scoped get, enabled_for_app, update, remove") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  EndpointStore& endpoints = s->endpoints();
  const TimeMs now = wall_now();
  const auto app = add_app(*s, now, "one", "one");
  const auto other = add_app(*s, now, "two", "two");

  const std::string key = "raw\0key\xff bytes"s;
  auto ep = make_endpoint(app.id, now, "ep-uid", "https://a.example/hook");
  ep.description = "first";
  ep.throttle_rate = 10;
  ep.event_types = std::vector<std::string>{"user.created", "user.deleted"};
  ep.channels = std::vector<std::string>{"ch1"};
  ep.metadata = {{"team", "x"}};
  ep.headers = {{"x-custom", "yes"}};
  endpoints.insert(ep, hmac_key(key));

  auto got = endpoints.get(app.id, ep.id);
  REQUIRE(got);
  CHECK(got->app_id == app.id);
  CHECK(got->uid == std::optional<std::string>("ep-uid"));
  CHECK(got->url == "https://a.example/hook");
  CHECK(got->description == "first");
  CHECK(got->throttle_rate == std::optional<int>(10));
  CHECK_FALSE(got->disabled);
  CHECK(got->event_types == ep.event_types);
  CHECK(got->channels == ep.channels);
  CHECK(got->metadata == ep.metadata);
  CHECK(got->headers == ep.headers);
  CHECK(got->created_at == now);
  CHECK(endpoints.current_key(ep.id) == opt_hmac_key(key));  // bytes, NUL intact

  auto by_uid = endpoints.get(app.id, "ep-uid");
  REQUIRE(by_uid);
  CHECK(by_uid->id == ep.id);

  // Scoped to the app: another app sees neither the id nor the uid.
  CHECK_FALSE(endpoints.get(other.id, ep.id));
  CHECK_FALSE(endpoints.get(other.id, "ep-uid"));

  // The same uid in another app is fine; twice in one app is not.
  endpoints.insert(make_endpoint(other.id, now, "ep-uid"), hmac_key("k"));
  CHECK(throws_constraint(
      [&] { endpoints.insert(make_endpoint(app.id, now, "ep-uid"), hmac_key("k")); }));

  auto disabled = make_endpoint(app.id, now + 1, std::nullopt);
  disabled.disabled = true;
  disabled.disabled_reason = "gone";
  endpoints.insert(disabled, hmac_key("k2"));
  const auto second = add_endpoint(*s, app.id, kUrl, "k3", now + 2);

  auto enabled = endpoints.enabled_for_app(app.id);
  CHECK(ids_of(enabled) == std::vector<std::string>{ep.id, second.id});
  auto listed = endpoints.list(app.id, ListParams{});
  CHECK(ids_of(listed.items) == std::vector<std::string>{ep.id, disabled.id, second.id});
  auto got_disabled = endpoints.get(app.id, disabled.id);
  REQUIRE(got_disabled);
  CHECK(got_disabled->disabled);
  CHECK(got_disabled->disabled_reason == std::optional<std::string>("gone"));

  auto changed = *got;
  changed.url = "https://b.example/new";
  changed.disabled = true;
  changed.disabled_reason = "manual";
  changed.event_types.reset();
  changed.channels = std::vector<std::string>{"c2", "c3"};
  changed.headers = {{"x-other", "1"}};
  changed.updated_at = now + 100;
  CHECK(endpoints.update(changed));
  auto after = endpoints.get(app.id, ep.id);
  REQUIRE(after);
  CHECK(after->url == "https://b.example/new");
  CHECK(after->disabled);
  CHECK(after->disabled_reason == std::optional<std::string>("manual"));
  CHECK_FALSE(after->event_types.has_value());
  CHECK(after->channels == changed.channels);
  CHECK(after->headers == changed.headers);
  CHECK(after->updated_at == now + 100);
  CHECK(after->created_at == now);
  CHECK(ids_of(endpoints.enabled_for_app(app.id)) == std::vector<std::string>{second.id});

  // update() is scoped to the app too.
  auto foreign = changed;
  foreign.app_id = other.id;
  foreign.url = "https://evil.example/";
  CHECK_FALSE(endpoints.update(foreign));
  CHECK(endpoints.get(app.id, ep.id)->url == "https://b.example/new");

  // Its deliveries and attempts go with it; those of the app's other endpoint stay.
  const auto m = add_message(*s, app.id, R"({"n":1})", now, "user.created");
  const auto d = add_delivery(*s, m, ep.id, now);
  const auto kept_d = add_delivery(*s, m, second.id, now);
  const auto a = make_attempt(d, now, DeliveryStatus::kFail, 500);
  const auto kept_a = make_attempt(kept_d, now, DeliveryStatus::kFail, 500);
  s->attempts().insert({a, kept_a});

  CHECK_FALSE(endpoints.remove(other.id, ep.id));
  CHECK(s->deliveries().get(d.id));
  CHECK(endpoints.remove(app.id, ep.id));
  CHECK_FALSE(endpoints.get(app.id, ep.id));
  CHECK_FALSE(endpoints.current_key(ep.id));
  CHECK_FALSE(s->deliveries().get(d.id));
  CHECK_FALSE(s->attempts().get(app.id, a.id));
  CHECK(s->deliveries().get(kept_d.id));
  CHECK(s->attempts().get(app.id, kept_a.id));
  CHECK_FALSE(endpoints.remove(app.id, ep.id));
}

TEST_CASE("EndpointStore rotate_key keeps the old key for its grace period") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  EndpointStore& endpoints = s->endpoints();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  const auto ep = add_endpoint(*s, app.id, kUrl, "key-1", t0);
  CHECK(endpoints.signing_keys(ep.id, t0) == hmac_keys({"key-1"}));

  const TimeMs rotated_at = t0 + 10;
  const int64_t grace = 1000;
  endpoints.rotate_key(ep.id, hmac_key("key-2"), grace, rotated_at);
  CHECK(endpoints.current_key(ep.id) == opt_hmac_key("key-2"));
  // The current key first, then the old one while its grace lasts.
  CHECK(endpoints.signing_keys(ep.id, rotated_at) == hmac_keys({"key-2", "key-1"}));
  CHECK(endpoints.signing_keys(ep.id, rotated_at + grace - 1) == hmac_keys({"key-2", "key-1"}));
  CHECK(endpoints.signing_keys(ep.id, rotated_at + grace) == hmac_keys({"key-2"}));
  CHECK(endpoints.signing_keys(ep.id, rotated_at + 10 * grace) == hmac_keys({"key-2"}));

  // A second rotation within the grace keeps both older keys, newest first.
  endpoints.rotate_key(ep.id, hmac_key("key-3"), grace, rotated_at + 100);
  CHECK(endpoints.signing_keys(ep.id, rotated_at + 100) == hmac_keys({"key-3", "key-2", "key-1"}));
  CHECK(endpoints.signing_keys(ep.id, rotated_at + grace + 50) == hmac_keys({"key-3", "key-2"}));

  // Rotating after graces ended drops the expired keys from the store.
  endpoints.rotate_key(ep.id, hmac_key("key-4"), grace, rotated_at + 5000);
  CHECK(endpoints.stored_keys(ep.id).size() == 2);
  CHECK(endpoints.signing_keys(ep.id, rotated_at + 5000) == hmac_keys({"key-4", "key-3"}));

  SUBCASE("grace 0 drops the old key at once") {
    const auto ep2 = add_endpoint(*s, app.id, kUrl, "old", t0);
    endpoints.rotate_key(ep2.id, hmac_key("new"), 0, t0 + 20);
    CHECK(endpoints.signing_keys(ep2.id, t0 + 20) == hmac_keys({"new"}));
    CHECK(endpoints.current_key(ep2.id) == opt_hmac_key("new"));
  }
}

TEST_CASE("EndpointStore stored_keys and insert_stored_key carry keys as they lie") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  EndpointStore& endpoints = s->endpoints();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  const auto ep = add_endpoint(*s, app.id, kUrl, "key-1", t0);
  endpoints.rotate_key(ep.id, hmac_key("key-2"), 1000, t0 + 10);

  const auto keys = endpoints.stored_keys(ep.id);
  REQUIRE(keys.size() == 2);  // oldest first
  CHECK(keys[0].bytes == "key-1");
  CHECK_FALSE(keys[0].sealed);  // no master key: stored as given
  CHECK(keys[0].created_at == t0);
  CHECK(keys[0].expires_at == std::optional<TimeMs>(t0 + 1010));
  CHECK(keys[1].bytes == "key-2");
  CHECK_FALSE(keys[1].sealed);
  CHECK(keys[1].created_at == t0 + 10);
  CHECK_FALSE(keys[1].expires_at.has_value());
  CHECK(endpoints.stored_keys(new_id(kEndpointPrefix, t0)).empty());

  // Inserted as it was, a key in its grace period signs as it did, after the current key.
  const auto copy = add_endpoint(*s, app.id, kUrl, "key-0", t0 + 10);
  endpoints.insert_stored_key(copy.id, keys[0]);
  const auto copied = endpoints.stored_keys(copy.id);
  REQUIRE(copied.size() == 2);
  CHECK(copied[0].bytes == "key-0");
  CHECK(copied[1].bytes == keys[0].bytes);
  CHECK(copied[1].sealed == keys[0].sealed);
  CHECK(copied[1].created_at == keys[0].created_at);
  CHECK(copied[1].expires_at == keys[0].expires_at);
  CHECK(endpoints.current_key(copy.id) == opt_hmac_key("key-0"));
  CHECK(endpoints.signing_keys(copy.id, t0 + 1009) == hmac_keys({"key-0", "key-1"}));
  CHECK(endpoints.signing_keys(copy.id, t0 + 1010) == hmac_keys({"key-0"}));
}

TEST_CASE("EndpointStore keeps the signature scheme, its header and each key's kind") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  EndpointStore& endpoints = s->endpoints();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  Endpoint ep = make_endpoint(app.id, t0, "signed");
  ep.signature_scheme = SignatureScheme::kStripe;
  ep.signature_header = "X-Acme-Signature";
  endpoints.insert(ep, hmac_key("hmac-key"));
  auto read = endpoints.get(app.id, ep.id);
  REQUIRE(read);
  CHECK(read->signature_scheme == SignatureScheme::kStripe);
  CHECK(read->signature_header == std::optional<std::string>("X-Acme-Signature"));

  // A standard endpoint by default, with no header of its own.
  const auto plain = add_endpoint(*s, app.id, kUrl, "k", t0);
  CHECK(endpoints.get(app.id, plain.id)->signature_scheme == SignatureScheme::kStandard);
  CHECK_FALSE(endpoints.get(app.id, plain.id)->signature_header);

  // Rotated to an Ed25519 key, the old HMAC key signs on for its grace, each with its kind.
  const SigningKey ed{KeyKind::kEd25519, std::string(32, 'e')};
  read->signature_scheme = SignatureScheme::kEd25519;
  read->signature_header.reset();
  CHECK(endpoints.update(*read));
  endpoints.rotate_key(ep.id, ed, 1000, t0 + 10);
  read = endpoints.get(app.id, ep.id);
  CHECK(read->signature_scheme == SignatureScheme::kEd25519);
  CHECK_FALSE(read->signature_header);
  CHECK(endpoints.current_key(ep.id) == std::optional<SigningKey>(ed));
  CHECK(endpoints.signing_keys(ep.id, t0 + 10) ==
        std::vector<SigningKey>{ed, hmac_key("hmac-key")});

  // Copied as stored, kinds included.
  const auto stored = endpoints.stored_keys(ep.id);
  REQUIRE(stored.size() == 2);
  CHECK(stored[0].kind == KeyKind::kHmac);
  CHECK(stored[1].kind == KeyKind::kEd25519);
  Endpoint copy = *read;
  copy.id = new_id(kEndpointPrefix, t0);
  copy.uid.reset();
  endpoints.import_endpoint(copy, stored);
  CHECK(endpoints.get(app.id, copy.id)->signature_scheme == SignatureScheme::kEd25519);
  CHECK(endpoints.signing_keys(copy.id, t0 + 10) ==
        std::vector<SigningKey>{ed, hmac_key("hmac-key")});
}

TEST_CASE("EndpointStore keeps a client certificate, its key sealed and apart from signing keys") {
  TestStore store;
  const auto box = std::make_shared<const SecretBox>(random_bytes(SecretBox::kKeySize));
  auto db = store.open(2, box);
  auto s = db->session();
  EndpointStore& endpoints = s->endpoints();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  const std::string cert = "-----BEGIN CERTIFICATE-----\ncert\n-----END CERTIFICATE-----\n";
  const std::string key =
      "-----BEGIN PRIVATE KEY-----\nsecret-key-body\n-----END PRIVATE KEY-----\n";
  Endpoint ep = make_endpoint(app.id, t0, "mtls");
  ep.client_cert = cert;
  endpoints.insert(ep, hmac_key("signing"));
  endpoints.set_client_key(ep.id, key, t0);
  CHECK(endpoints.get(app.id, ep.id)->client_cert == std::optional(cert));
  CHECK(endpoints.client_key(ep.id) == std::optional(key));
  // The signing keys do not see it, and a rotation leaves it be.
  CHECK(endpoints.current_key(ep.id) == opt_hmac_key("signing"));
  endpoints.rotate_key(ep.id, hmac_key("next"), 0, t0 + 1);
  CHECK(endpoints.signing_keys(ep.id, t0 + 2) == hmac_keys({"next"}));
  CHECK(endpoints.client_key(ep.id) == std::optional(key));
  // Replaced, removed and put back; the row's certificate is written as update() is given it.
  endpoints.set_client_key(ep.id, "other", t0 + 3);
  CHECK(endpoints.client_key(ep.id) == std::optional<std::string>("other"));
  endpoints.set_client_key(ep.id, std::nullopt, t0 + 4);
  CHECK_FALSE(endpoints.client_key(ep.id));
  endpoints.set_client_key(ep.id, key, t0 + 5);
  Endpoint changed = *endpoints.get(app.id, ep.id);
  changed.client_cert.reset();
  CHECK(endpoints.update(changed));
  CHECK_FALSE(endpoints.get(app.id, ep.id)->client_cert);
  changed.client_cert = cert;
  CHECK(endpoints.update(changed));
  CHECK(endpoints.get(app.id, ep.id)->client_cert == std::optional(cert));

  // Sealed at rest, copied as it lies, re-sealed with the rest.
  const auto stored = endpoints.stored_keys(ep.id);
  const auto tls = std::find_if(stored.begin(), stored.end(),
                                [](const StoredKey& k) { return k.kind == KeyKind::kTlsClient; });
  REQUIRE(tls != stored.end());
  CHECK(tls->sealed);
  CHECK(tls->bytes.find("secret-key-body") == std::string::npos);
  // (Sealed under the endpoint's id: a copy keeps the id, as copy_store does.)
  const Endpoint original = *endpoints.get(app.id, ep.id);
  CHECK(endpoints.remove(app.id, ep.id));
  CHECK_FALSE(endpoints.client_key(ep.id));
  endpoints.import_endpoint(original, stored);
  CHECK(endpoints.get(app.id, ep.id)->client_cert == std::optional(cert));
  CHECK(endpoints.client_key(ep.id) == std::optional(key));
  s->begin();
  const SecretBox next(random_bytes(SecretBox::kKeySize));
  CHECK(endpoints.reseal_keys(next) == static_cast<int>(stored.size()));
  s->commit();
  const auto resealed = endpoints.stored_keys(ep.id);
  const auto again = std::find_if(resealed.begin(), resealed.end(),
                                  [](const StoredKey& k) { return k.kind == KeyKind::kTlsClient; });
  REQUIRE(again != resealed.end());
  CHECK(next.open(again->bytes, ep.id) == std::optional(key));
}

TEST_CASE("EndpointStore under a master key: keys lie sealed, with a key check") {
  TestStore store;
  const auto box = std::make_shared<const SecretBox>(random_bytes(SecretBox::kKeySize));
  auto db = store.open(2, box);
  auto s = db->session();
  EndpointStore& endpoints = s->endpoints();
  const TimeMs now = wall_now();
  CHECK(endpoints.key_check().has_value());  // recorded when the database adopted the key
  CHECK(is_sealed(*s));

  const std::string key = random_bytes(24);
  const auto app = add_app(*s, now);
  const auto ep = add_endpoint(*s, app.id, kUrl, key, now);
  const auto stored = endpoints.stored_keys(ep.id);
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].sealed);
  CHECK(stored[0].bytes.find(key) == std::string::npos);
  CHECK(box->open(stored[0].bytes, ep.id) == std::optional<std::string>(key));
  CHECK(endpoints.current_key(ep.id) == opt_hmac_key(key));
  CHECK(endpoints.has_sealed_keys());
  CHECK(endpoints.sealed_keys_open());

  // The key check round-trips as bytes.
  const std::string check = "not\0a real check"s;
  endpoints.set_key_check(check);
  CHECK(endpoints.key_check() == std::optional<std::string>(check));
}

TEST_CASE("EndpointStore note_failure keeps the start of a failing run; note_successes ends it") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  EndpointStore& endpoints = s->endpoints();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  const auto ep = add_endpoint(*s, app.id, kUrl, "k", t0);
  const auto bystander = add_endpoint(*s, app.id, kUrl, "k2", t0);
  const auto failing_since = [&](const Endpoint& e) {
    auto got = endpoints.get(app.id, e.id);
    REQUIRE(got);
    return got->failing_since;
  };

  CHECK(endpoints.note_failure(ep.id, t0 + 100) == std::optional<TimeMs>(t0 + 100));
  CHECK(endpoints.note_failure(ep.id, t0 + 200) == std::optional<TimeMs>(t0 + 100));
  CHECK(endpoints.note_failure(ep.id, t0 + 50) == std::optional<TimeMs>(t0 + 100));
  CHECK(failing_since(ep) == std::optional<TimeMs>(t0 + 100));
  CHECK_FALSE(failing_since(bystander).has_value());
  CHECK_FALSE(endpoints.note_failure(new_id(kEndpointPrefix, t0), t0 + 300).has_value());

  endpoints.note_successes({ep.id});
  CHECK_FALSE(failing_since(ep).has_value());
  endpoints.note_successes({ep.id});  // no run: nothing to end, nothing breaks
  endpoints.note_successes({});
  CHECK_FALSE(failing_since(ep).has_value());

  // The next failure starts a new run.
  CHECK(endpoints.note_failure(ep.id, t0 + 400) == std::optional<TimeMs>(t0 + 400));
  CHECK(endpoints.note_failure(ep.id, t0 + 500) == std::optional<TimeMs>(t0 + 400));
  CHECK(failing_since(ep) == std::optional<TimeMs>(t0 + 400));
  // Neither touches anything else of the endpoint.
  auto got = endpoints.get(app.id, ep.id);
  CHECK_FALSE(got->disabled);
  CHECK(got->updated_at == t0);
  CHECK(got->url == ep.url);

  // Several at once, failing or not.
  endpoints.note_failure(bystander.id, t0 + 600);
  endpoints.note_successes({bystander.id, new_id(kEndpointPrefix, t0), ep.id});
  CHECK_FALSE(failing_since(ep).has_value());
  CHECK_FALSE(failing_since(bystander).has_value());
}

TEST_CASE("EndpointStore disable flips only enabled endpoints") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  EndpointStore& endpoints = s->endpoints();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  const auto ep = add_endpoint(*s, app.id, kUrl, "k", t0);
  const auto bystander = add_endpoint(*s, app.id, kUrl, "k", t0);
  auto manual = make_endpoint(app.id, t0, std::nullopt);
  manual.disabled = true;
  manual.disabled_reason = "by hand";
  endpoints.insert(manual, hmac_key("k"));
  endpoints.note_failure(ep.id, t0 + 1);

  CHECK(endpoints.disable(ep.id, "the endpoint answered 410 Gone", t0 + 10));
  auto got = endpoints.get(app.id, ep.id);
  REQUIRE(got);
  CHECK(got->disabled);
  CHECK(got->disabled_reason == std::optional<std::string>("the endpoint answered 410 Gone"));
  CHECK(got->updated_at == t0 + 10);
  CHECK(got->failing_since == std::optional<TimeMs>(t0 + 1));  // kept: when it began failing

  // Already disabled: false, and the first reason stays.
  CHECK_FALSE(endpoints.disable(ep.id, "another reason", t0 + 20));
  got = endpoints.get(app.id, ep.id);
  CHECK(got->disabled_reason == std::optional<std::string>("the endpoint answered 410 Gone"));
  CHECK(got->updated_at == t0 + 10);
  CHECK_FALSE(endpoints.disable(manual.id, "automatic", t0 + 20));
  CHECK(endpoints.get(app.id, manual.id)->disabled_reason == std::optional<std::string>("by hand"));
  CHECK_FALSE(endpoints.disable(new_id(kEndpointPrefix, t0), "ghost", t0 + 20));

  CHECK_FALSE(endpoints.get(app.id, bystander.id)->disabled);
  CHECK(ids_of(endpoints.enabled_for_app(app.id)) == std::vector<std::string>{bystander.id});
}

TEST_CASE("EndpointStore update clears failing_since only when it re-enables") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  EndpointStore& endpoints = s->endpoints();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  const auto ep = add_endpoint(*s, app.id, kUrl, "k", t0);
  const auto get = [&] {
    auto got = endpoints.get(app.id, ep.id);
    REQUIRE(got);
    return *got;
  };

  // Editing an enabled, failing endpoint keeps its run (and ignores the field).
  endpoints.note_failure(ep.id, t0 + 100);
  auto e = get();
  e.description = "edited";
  e.failing_since.reset();
  e.updated_at = t0 + 200;
  CHECK(endpoints.update(e));
  CHECK(get().description == "edited");
  CHECK(get().failing_since == std::optional<TimeMs>(t0 + 100));

  // Disabling through update() keeps it, and so does editing while disabled.
  e = get();
  e.disabled = true;
  e.disabled_reason = "by hand";
  CHECK(endpoints.update(e));
  CHECK(get().disabled);
  CHECK(get().failing_since == std::optional<TimeMs>(t0 + 100));
  e = get();
  e.description = "edited while disabled";
  CHECK(endpoints.update(e));
  CHECK(get().failing_since == std::optional<TimeMs>(t0 + 100));

  // Re-enabling clears it: the endpoint gets a fresh window.
  e = get();
  e.disabled = false;
  e.disabled_reason.reset();
  e.failing_since = t0 + 1;  // ignored
  e.updated_at = t0 + 300;
  CHECK(endpoints.update(e));
  auto after = get();
  CHECK_FALSE(after.disabled);
  CHECK_FALSE(after.disabled_reason.has_value());
  CHECK_FALSE(after.failing_since.has_value());
  CHECK(after.description == "edited while disabled");
  CHECK(after.updated_at == t0 + 300);

  // The same after an automatic disable.
  endpoints.note_failure(ep.id, t0 + 400);
  CHECK(endpoints.disable(ep.id, "failing", t0 + 500));
  e = get();
  CHECK(e.failing_since == std::optional<TimeMs>(t0 + 400));
  e.disabled = false;
  CHECK(endpoints.update(e));
  CHECK_FALSE(get().failing_since.has_value());
  CHECK_FALSE(get().disabled);
}

// ---------------------------------------------------------------------------------------------
// EventTypeStore

TEST_CASE("EventTypeStore CRUD and list without archived types") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  EventTypeStore& types = s->event_types();
  const TimeMs now = wall_now();
  const auto make = [&](std::string name) {
    EventType e;
    e.name = std::move(name);
    e.description = "about " + e.name;
    e.created_at = e.updated_at = now;
    return e;
  };
  auto a = make("invoice.paid");
  a.schemas_json = R"({"1":{"type":"object"}})";
  a.group_name = "billing";
  a.feature_flags = std::vector<std::string>{"beta", "billing-v2"};
  types.insert(a);
  types.insert(make("user.created"));
  auto archived = make("legacy.thing");
  archived.archived = true;
  types.insert(archived);
  types.insert(make("zeta.event"));

  CHECK(throws_constraint([&] { types.insert(make("invoice.paid")); }));

  auto got = types.get("invoice.paid");
  REQUIRE(got);
  CHECK(got->description == "about invoice.paid");
  CHECK(got->schemas_json == a.schemas_json);
  CHECK(got->group_name == std::optional<std::string>("billing"));
  CHECK(got->feature_flags == a.feature_flags);
  CHECK_FALSE(types.get("user.created")->feature_flags);  // none: not an empty list
  CHECK_FALSE(got->archived);
  CHECK_FALSE(got->deprecated);
  CHECK_FALSE(types.get("nope"));

  ListParams p;
  auto visible = types.list(p, false);
  CHECK(names_of(visible.items) ==
        std::vector<std::string>{"invoice.paid", "user.created", "zeta.event"});
  CHECK(visible.done);
  auto all = types.list(p, true);
  CHECK(names_of(all.items) ==
        std::vector<std::string>{"invoice.paid", "legacy.thing", "user.created", "zeta.event"});

  p.limit = 2;
  auto first = types.list(p, false);
  CHECK(names_of(first.items) == std::vector<std::string>{"invoice.paid", "user.created"});
  CHECK_FALSE(first.done);
  p.cursor = first.items.back().name;
  auto rest = types.list(p, false);
  CHECK(names_of(rest.items) == std::vector<std::string>{"zeta.event"});
  CHECK(rest.done);

  auto changed = *got;
  changed.description = "new text";
  changed.archived = true;
  changed.deprecated = true;
  changed.schemas_json.reset();
  changed.feature_flags = std::vector<std::string>{"gamma"};
  changed.updated_at = now + 7;
  CHECK(types.update(changed));
  auto after = types.get("invoice.paid");
  REQUIRE(after);
  CHECK(after->feature_flags == std::optional(std::vector<std::string>{"gamma"}));
  CHECK(after->description == "new text");
  CHECK(after->archived);
  CHECK(after->deprecated);
  CHECK_FALSE(after->schemas_json);
  CHECK(after->updated_at == now + 7);
  CHECK(names_of(types.list(ListParams{}, false).items) ==
        std::vector<std::string>{"user.created", "zeta.event"});
  CHECK_FALSE(types.update(make("missing")));
  changed.feature_flags.reset();
  CHECK(types.update(changed));
  CHECK_FALSE(types.get("invoice.paid")->feature_flags);

  CHECK(types.remove("zeta.event"));
  CHECK_FALSE(types.get("zeta.event"));
  CHECK_FALSE(types.remove("zeta.event"));
}

TEST_CASE("EventTypeStore list_all and filtered_page read through every page") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  EventTypeStore& types = s->event_types();
  const TimeMs now = wall_now();
  std::vector<std::string> all, even;
  for (int i = 0; i < 300; ++i) {  // more than list_all's page of 250
    EventType e{.name = "t." + std::to_string(1000 + i), .archived = i == 7};
    if (i % 2 == 1) e.feature_flags = std::vector<std::string>{"odd"};
    e.created_at = e.updated_at = now;
    types.insert(e);
    all.push_back(e.name);
    if (i % 2 == 0) even.push_back(e.name);
  }
  CHECK(names_of(types.list_all(true)) == all);
  auto unarchived = all;
  unarchived.erase(unarchived.begin() + 7);
  CHECK(names_of(types.list_all(false)) == unarchived);

  // Only the flagless ones, 3 to a page, forwards then backwards: every page full but the
  // last, the cursor where the kept items end.
  int fetches = 0;
  const auto fetch = [&](const ListParams& q) {
    ++fetches;
    return types.list(q, true);
  };
  const auto keep = [](const EventType& e) { return !e.feature_flags; };
  const auto key = [](const EventType& e) { return e.name; };
  ListParams p;
  p.limit = 3;
  std::vector<std::string> seen;
  for (;;) {
    auto page = filtered_page<EventType>(p, fetch, keep, key);
    for (const auto& e : page.items) seen.push_back(e.name);
    if (page.done) break;
    CHECK(page.items.size() == 3);
    p.cursor = page.items.back().name;
  }
  CHECK(seen == even);
  CHECK(fetches >= 100);  // half of each page of 3 was dropped: it read on

  p.cursor = "t.1010";
  p.backwards = true;
  auto back = filtered_page<EventType>(p, fetch, keep, key);
  CHECK(names_of(back.items) == std::vector<std::string>{"t.1004", "t.1006", "t.1008"});
  CHECK_FALSE(back.done);
  p.cursor = "t.1002";
  back = filtered_page<EventType>(p, fetch, keep, key);
  CHECK(names_of(back.items) == std::vector<std::string>{"t.1000"});
  CHECK(back.done);

  // Nothing kept: an empty, finished page.
  p = ListParams{};
  auto none = filtered_page<EventType>(
      p, fetch, [](const EventType&) { return false; }, key);
  CHECK(none.items.empty());
  CHECK(none.done);
}

// ---------------------------------------------------------------------------------------------
// MessageStore

TEST_CASE("MessageStore get, event id uniqueness, list newest first with filters") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  MessageStore& messages = s->messages();
  const TimeMs now = wall_now();
  const auto app = add_app(*s, now);
  const auto other = add_app(*s, now);

  // new_id never hands out an id sorting before one it made earlier in this process, so the
  // controlled times lie ahead of any id made before (including by earlier subcase runs).
  static TimeMs next_base = 0;
  const TimeMs base = std::max(now + 3'600'000, next_base);
  next_base = base + 100'000;
  const std::vector<std::string> types = {"a", "b", "a", "c", "b"};
  const std::vector<std::optional<std::vector<std::string>>> channels = {
      std::vector<std::string>{"x"}, std::nullopt, std::vector<std::string>{"y", "x"},
      std::vector<std::string>{"y"}, std::vector<std::string>{"x"}};
  std::vector<Message> ms;
  for (size_t i = 0; i < types.size(); ++i) {
    auto m = make_message(app.id, base + static_cast<TimeMs>(i) * 1000, types[i],
                          "evt-" + std::to_string(i), channels[i]);
    REQUIRE(m.id >= id_lower_bound(kMessagePrefix, m.timestamp));
    REQUIRE(m.id < id_lower_bound(kMessagePrefix, m.timestamp + 1));
    messages.insert(m);
    ms.push_back(m);
  }
  const auto ids = [&](std::initializer_list<int> idx) {
    std::vector<std::string> out;
    for (int i : idx) out.push_back(ms[static_cast<size_t>(i)].id);
    return out;
  };

  SUBCASE("get by id and by event id, scoped to the app") {
    auto m = messages.get(app.id, ms[2].id);
    REQUIRE(m);
    CHECK(m->payload == ms[2].payload);
    CHECK(m->event_type == "a");
    CHECK(m->event_id == std::optional<std::string>("evt-2"));
    CHECK(m->channels == channels[2]);
    CHECK(m->timestamp == ms[2].timestamp);
    auto by_event = messages.get(app.id, "evt-3");
    REQUIRE(by_event);
    CHECK(by_event->id == ms[3].id);
    CHECK_FALSE(messages.get(other.id, ms[2].id));
    CHECK_FALSE(messages.get(other.id, "evt-3"));
    CHECK_FALSE(messages.get(app.id, "evt-404"));
  }
  SUBCASE("event id is unique per app, not across apps") {
    CHECK(throws_constraint(
        [&] { messages.insert(make_message(app.id, base + 9000, "a", "evt-1")); }));
    auto elsewhere = make_message(other.id, base + 9000, "a", "evt-1");
    CHECK_NOTHROW(messages.insert(elsewhere));
    CHECK(messages.get(other.id, "evt-1")->id == elsewhere.id);
    // Without an event id there is nothing to collide.
    CHECK_NOTHROW(messages.insert(make_message(app.id, base + 9001, "a")));
    CHECK_NOTHROW(messages.insert(make_message(app.id, base + 9002, "a")));
  }
  SUBCASE("payload bytes survive exactly") {
    auto m = make_message(app.id, base + 9000, "raw");
    m.payload = "{\"s\": \"\xc3\xa9\\u0000\",  \"n\":1.50}\n";
    messages.insert(m);
    CHECK(messages.get(app.id, m.id)->payload == m.payload);
    CHECK(messages.payloads({m.id}) == std::map<std::string, std::string>{{m.id, m.payload}});
  }
  SUBCASE("list is newest first and pages") {
    ListParams p;
    auto all = messages.list(app.id, p, {});
    CHECK(ids_of(all.items) == ids({4, 3, 2, 1, 0}));
    CHECK(all.done);

    p.limit = 2;
    auto p1 = messages.list(app.id, p, {});
    CHECK(ids_of(p1.items) == ids({4, 3}));
    CHECK_FALSE(p1.done);
    p.cursor = p1.items.back().id;
    auto p2 = messages.list(app.id, p, {});
    CHECK(ids_of(p2.items) == ids({2, 1}));
    CHECK_FALSE(p2.done);
    p.cursor = p2.items.back().id;
    auto p3 = messages.list(app.id, p, {});
    CHECK(ids_of(p3.items) == ids({0}));
    CHECK(p3.done);

    ListParams b;
    b.limit = 2;
    b.backwards = true;
    b.cursor = p2.items.front().id;
    auto back = messages.list(app.id, b, {});
    CHECK(ids_of(back.items) == ids({4, 3}));
    CHECK(back.done);

    CHECK(messages.list(other.id, ListParams{}, {}).items.empty());
  }
  SUBCASE("event type filter") {
    MessageFilter f;
    f.event_types = std::vector<std::string>{"a", "c"};
    CHECK(ids_of(messages.list(app.id, {}, f).items) == ids({3, 2, 0}));
    f.event_types = std::vector<std::string>{"b"};
    CHECK(ids_of(messages.list(app.id, {}, f).items) == ids({4, 1}));
    f.event_types = std::vector<std::string>{};  // empty: no filter
    CHECK(messages.list(app.id, {}, f).items.size() == 5);
  }
  SUBCASE("channel filter") {
    MessageFilter f;
    f.channel = "x";
    CHECK(ids_of(messages.list(app.id, {}, f).items) == ids({4, 2, 0}));
    f.channel = "y";
    CHECK(ids_of(messages.list(app.id, {}, f).items) == ids({3, 2}));
    f.channel = "z";
    CHECK(messages.list(app.id, {}, f).items.empty());
  }
  SUBCASE("before and after are strict time bounds") {
    MessageFilter f;
    f.before = ms[2].timestamp;
    CHECK(ids_of(messages.list(app.id, {}, f).items) == ids({1, 0}));
    f.before.reset();
    f.after = ms[2].timestamp;
    CHECK(ids_of(messages.list(app.id, {}, f).items) == ids({4, 3}));
    f.after = ms[2].timestamp - 1;
    CHECK(ids_of(messages.list(app.id, {}, f).items) == ids({4, 3, 2}));
    f.after = ms[0].timestamp;
    f.before = ms[4].timestamp;
    CHECK(ids_of(messages.list(app.id, {}, f).items) == ids({3, 2, 1}));
    f.event_types = std::vector<std::string>{"a"};
    CHECK(ids_of(messages.list(app.id, {}, f).items) == ids({2}));
  }
}

TEST_CASE("MessageStore expire_payloads respects the cutoff, the limit and the watermark") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  MessageStore& messages = s->messages();
  const TimeMs t0 = wall_now() - 3'600'000;
  const auto app = add_app(*s, wall_now());
  const TimeMs cutoff = t0 + 10'000;
  // Three before the cutoff, one at it, one after it.
  std::vector<Message> ms;
  for (TimeMs at : {t0, t0 + 1000, t0 + 2000, cutoff, cutoff + 1000}) {
    auto m = make_message(app.id, at, "a", "evt-" + std::to_string(ms.size()));
    m.id = id_at(kMessagePrefix, at, 1);
    messages.insert(m);
    ms.push_back(m);
  }
  const auto expired = [&](const Message& m) {
    auto got = messages.get(app.id, m.id);
    REQUIRE(got);
    if (got->payload_expired) CHECK(got->payload.empty());
    if (!got->payload_expired) CHECK(got->payload == m.payload);
    return got->payload_expired;
  };

  std::string last;
  CHECK(messages.expire_payloads(cutoff, "", 2, &last) == 2);
  CHECK(last == ms[1].id);
  CHECK(expired(ms[0]));
  CHECK(expired(ms[1]));
  CHECK_FALSE(expired(ms[2]));
  // payloads(): "" once expired, absent for no such message.
  const std::string ghost = new_id(kMessagePrefix, t0);
  CHECK(messages.payloads({ms[0].id, ms[2].id, ghost}) ==
        std::map<std::string, std::string>{{ms[0].id, ""}, {ms[2].id, ms[2].payload}});
  CHECK(messages.payloads({}).empty());

  CHECK(messages.expire_payloads(cutoff, last, 2, &last) == 1);
  CHECK(last == ms[2].id);
  CHECK(expired(ms[2]));
  CHECK(messages.expire_payloads(cutoff, last, 2, &last) == 0);
  CHECK(last == ms[2].id);
  CHECK_FALSE(expired(ms[3]));  // made at the cutoff: not before it
  CHECK_FALSE(expired(ms[4]));

  // An old message below the watermark is left to a pass from the start; already expired
  // payloads are not counted again.
  auto late = make_message(app.id, t0 - 1000, "a");
  late.id = id_at(kMessagePrefix, t0 - 1000, 1);
  messages.insert(late);
  CHECK(messages.expire_payloads(cutoff, last, 10, &last) == 0);
  CHECK_FALSE(expired(late));
  std::string from_start;
  CHECK(messages.expire_payloads(cutoff, "", 10, &from_start) == 1);
  CHECK(from_start == late.id);
  CHECK(expired(late));
  CHECK(messages.expire_payloads(cutoff + 2000, "", 10, &from_start) == 2);
  CHECK(expired(ms[3]));
  CHECK(expired(ms[4]));

  // Everything else of an expired message stays, and listings say it is expired too.
  auto got = messages.get(app.id, "evt-0");
  REQUIRE(got);
  CHECK(got->id == ms[0].id);
  CHECK(got->event_type == "a");
  CHECK(got->timestamp == t0);
  auto listed = messages.list(app.id, ListParams{}, {});
  REQUIRE(listed.items.size() == 6);
  for (const auto& m : listed.items) {
    CAPTURE(m.id);
    CHECK(m.payload_expired);
    CHECK(m.payload.empty());
  }
}

TEST_CASE("MessageStore payload_expired is false for a message with a payload") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  const TimeMs now = wall_now();
  const auto app = add_app(*s, now);
  const auto m = add_message(*s, app.id, R"({"a":1})", now);
  auto got = s->messages().get(app.id, m.id);
  REQUIRE(got);
  CHECK_FALSE(got->payload_expired);
  CHECK(got->payload == m.payload);
  auto listed = s->messages().list(app.id, ListParams{}, {});
  REQUIRE(listed.items.size() == 1);
  CHECK_FALSE(listed.items[0].payload_expired);
}

// ---------------------------------------------------------------------------------------------
// QueueStore and DeliveryStore

TEST_CASE("QueueStore claim takes due rows under a lease and reclaims lapsed ones") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  QueueStore& queue = s->queue();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  const auto ep = add_endpoint(*s, app.id, kUrl, "k", t0);
  const auto m = add_message(*s, app.id, "{}", t0);

  CHECK_FALSE(queue.next_due());

  const auto due_now = add_delivery(*s, m, ep.id, t0, DeliveryStatus::kPending, t0);
  const auto overdue = add_delivery(*s, m, ep.id, t0, DeliveryStatus::kPending, t0 - 10);
  const auto later = add_delivery(*s, m, ep.id, t0, DeliveryStatus::kPending, t0 + 1000);
  const auto done = add_delivery(*s, m, ep.id, t0, DeliveryStatus::kSuccess, t0 - 50);
  const auto failed = add_delivery(*s, m, ep.id, t0, DeliveryStatus::kFail, t0 - 50);
  CHECK(queue.next_due() == std::optional<TimeMs>(t0 - 10));

  const int64_t lease = 5000;
  const auto claim = [&](TimeMs now, int limit = 10) { return claim_due(*s, now, lease, limit); };

  // The limit takes the oldest due first.
  auto first = claim(t0, 1);
  CHECK(ids_of(first) == std::vector<std::string>{overdue.id});
  auto second = claim(t0);
  CHECK(ids_of(second) == std::vector<std::string>{due_now.id});
  for (const auto& d : {first.at(0), second.at(0)}) {
    CHECK(d.status == DeliveryStatus::kSending);
    CHECK(d.next_attempt_at == t0 + lease);
    CHECK(d.attempts == 0);
    CHECK(d.msg_id == m.id);
    CHECK(d.endpoint_id == ep.id);
    auto stored = s->deliveries().get(d.id);
    REQUIRE(stored);
    CHECK(stored->status == DeliveryStatus::kSending);
    CHECK(stored->next_attempt_at == t0 + lease);
    CHECK(stored->updated_at == t0);
  }
  CHECK(s->deliveries().stats(ep.id).sending == 2);

  // Leased rows are not handed out again while the lease holds.
  CHECK(claim(t0 + 100).empty());
  auto only_later = claim(t0 + 1000);
  CHECK(ids_of(only_later) == std::vector<std::string>{later.id});
  CHECK(claim(t0 + lease - 1).empty());

  // The claimer "crashed": once the lease lapses the rows are claimed again.
  auto reclaimed = claim(t0 + lease);
  CHECK(id_set(reclaimed) == std::set<std::string>{overdue.id, due_now.id});
  for (const auto& d : reclaimed) {
    CHECK(d.status == DeliveryStatus::kSending);
    CHECK(d.next_attempt_at == t0 + 2 * lease);
  }
  CHECK(claim(t0 + lease + 1).empty());

  // Much later everything unfinished is due; the limit still bounds a claim.
  CHECK(claim(t0 + 100 * lease, 2).size() == 2);
  CHECK(claim(t0 + 100 * lease, 2).size() == 1);

  // Finished rows are never claimed.
  CHECK(s->deliveries().get(done.id)->status == DeliveryStatus::kSuccess);
  CHECK(s->deliveries().get(failed.id)->status == DeliveryStatus::kFail);
}

TEST_CASE(
    "QueueStore parking: complete without a due time, claim_parked, parked_endpoints, state") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  QueueStore& queue = s->queue();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  const auto busy = add_endpoint(*s, app.id, kUrl, "k", t0);
  const auto open_ep = add_endpoint(*s, app.id, kUrl, "k", t0);
  const auto also_busy = add_endpoint(*s, app.id, kUrl, "k", t0);
  const auto m = add_message(*s, app.id, "{}", t0);
  std::vector<Delivery> to_busy;
  for (int i = 0; i < 5; ++i) {
    to_busy.push_back(add_delivery(*s, m, busy.id, t0, DeliveryStatus::kPending, t0 - 50 + i));
  }
  // A retry, not yet due.
  const auto busy_later = add_delivery(*s, m, busy.id, t0, DeliveryStatus::kPending, t0 + 60000);
  const auto to_free = add_delivery(*s, m, open_ep.id, t0, DeliveryStatus::kPending, t0 - 10);
  const auto to_also_busy =
      add_delivery(*s, m, also_busy.id, t0, DeliveryStatus::kPending, t0 - 20);
  const auto parked_endpoints = [&] {
    const auto ids = queue.parked_endpoints();
    return std::set<std::string>(ids.begin(), ids.end());
  };

  auto q = queue.state(t0);
  CHECK(q.queued == 8);
  CHECK(q.parked == 0);
  CHECK(q.oldest_due == std::optional<TimeMs>(t0 - 50));

  // The scheduler claims what is due and parks what its endpoint has no room for, which takes
  // it out of the due order; the rest goes back as it was.
  {
    s->begin();
    auto claimed = queue.claim(t0, 1000, 10);
    REQUIRE(claimed.size() == 7);
    std::vector<DeliveryUpdate> updates;
    for (const auto& d : claimed) {
      const bool parked = d.endpoint_id != open_ep.id;
      updates.push_back({d.id, DeliveryStatus::kPending, 0,
                         parked ? std::nullopt : std::optional<TimeMs>(t0 - 10), d.claim});
    }
    queue.complete(updates, t0);
    s->commit();
  }
  CHECK(parked_endpoints() == std::set<std::string>{busy.id, also_busy.id});
  CHECK(s->deliveries().get(busy_later.id)->next_attempt_at == t0 + 60000);
  CHECK(s->deliveries().stats(busy.id).pending == 6);  // parked still reads as pending
  q = queue.state(t0);
  CHECK(q.queued == 2);
  CHECK(q.parked == 6);
  CHECK(q.oldest_due == std::optional<TimeMs>(t0 - 10));
  CHECK(queue.next_due() == std::optional<TimeMs>(t0 - 10));
  // Nothing parked is claimed by due time.
  CHECK(ids_of(claim_due(*s, t0, 1000)) == std::vector<std::string>{to_free.id});

  // Claimed back per endpoint, oldest made first, under a lease.
  s->begin();
  const auto got = queue.claim_parked(busy.id, t0 + 5, 1000, 2);
  s->commit();
  REQUIRE(got.size() == 2);
  const std::set<std::string> first_two{to_busy[0].id, to_busy[1].id};
  for (const auto& d : got) {
    CHECK(first_two.count(d.id) == 1);
    CHECK(d.status == DeliveryStatus::kSending);
    CHECK(d.next_attempt_at == t0 + 5 + 1000);
  }
  s->begin();
  CHECK(queue.claim_parked(busy.id, t0 + 5, 1000, 10).size() == 3);
  CHECK(queue.claim_parked(busy.id, t0 + 5, 1000, 10).empty());
  CHECK(queue.claim_parked(open_ep.id, t0 + 5, 1000, 10).empty());
  CHECK(parked_endpoints() == std::set<std::string>{also_busy.id});
  CHECK(ids_of(queue.claim_parked(also_busy.id, t0 + 5, 1000, 10)) ==
        std::vector<std::string>{to_also_busy.id});
  s->commit();
  CHECK(queue.parked_endpoints().empty());
  CHECK(queue.state(t0 + 5).parked == 0);

  // A claimed row parked again waits again; completed pending with a due time it is due.
  queue.complete({{got[0].id, DeliveryStatus::kPending, 1, std::nullopt, got[0].claim}}, t0 + 6);
  CHECK(queue.parked_endpoints() == std::vector<std::string>{busy.id});
  s->begin();
  const auto again = queue.claim_parked(busy.id, t0 + 6, 1000, 10);
  s->commit();
  REQUIRE(ids_of(again) == std::vector<std::string>{got[0].id});
  CHECK(again[0].attempts == 1);
  queue.complete({{got[0].id, DeliveryStatus::kPending, 1, t0 + 7, again[0].claim}}, t0 + 6);
  CHECK(queue.parked_endpoints().empty());
  CHECK(s->deliveries().get(got[0].id)->next_attempt_at == t0 + 7);
}

TEST_CASE("QueueStore complete, next_due; DeliveryStore stats and for_message") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  QueueStore& queue = s->queue();
  DeliveryStore& deliveries = s->deliveries();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  const auto ep1 = add_endpoint(*s, app.id, kUrl, "k1", t0);
  const auto ep2 = add_endpoint(*s, app.id, kUrl, "k2", t0 + 1);
  const auto m1 = add_message(*s, app.id, "{}", t0);
  const auto m2 = add_message(*s, app.id, "{}", t0);

  const auto d2 = add_delivery(*s, m1, ep2.id, t0, DeliveryStatus::kPending, t0 + 200);
  const auto d1 = add_delivery(*s, m1, ep1.id, t0, DeliveryStatus::kPending, t0 + 100);
  const auto d3 = add_delivery(*s, m2, ep1.id, t0, DeliveryStatus::kPending, t0 + 300);
  const auto d4 = add_delivery(*s, m2, ep1.id, t0, DeliveryStatus::kPending, t0 + 400);

  CHECK(ids_of(deliveries.for_message(m1.id)) == std::vector<std::string>{d1.id, d2.id});
  CHECK(deliveries.for_message(m2.id).size() == 2);
  CHECK(deliveries.for_message("msg_nothing").empty());

  auto st = deliveries.stats(ep1.id);
  CHECK(st.pending == 3);
  CHECK(st.success == 0);
  CHECK(st.fail == 0);
  CHECK(st.sending == 0);
  CHECK(queue.next_due() == std::optional<TimeMs>(t0 + 100));

  std::map<std::string, int64_t> claims;
  const auto claim = [&](TimeMs now) {
    auto got = claim_due(*s, now, 1000);
    for (const auto& d : got) claims[d.id] = d.claim;
    return id_set(got);
  };

  CHECK(claim(t0 + 100) == std::set<std::string>{d1.id});
  queue.complete({{d1.id, DeliveryStatus::kSuccess, 1, std::nullopt, claims[d1.id]}}, t0 + 150);
  auto got1 = deliveries.get(d1.id);
  REQUIRE(got1);
  CHECK(got1->status == DeliveryStatus::kSuccess);
  CHECK(got1->attempts == 1);
  CHECK(got1->updated_at == t0 + 150);
  CHECK(got1->created_at == t0);
  CHECK(queue.next_due() == std::optional<TimeMs>(t0 + 200));

  CHECK(claim(t0 + 400) == std::set<std::string>{d2.id, d3.id, d4.id});
  auto s2 = deliveries.stats(ep2.id);
  CHECK(s2.sending == 1);
  CHECK(s2.pending == 0);
  // A leased row is due again when its lease lapses.
  CHECK(queue.next_due() == std::optional<TimeMs>(t0 + 1400));

  // Several at once: one retried (due before anything else), one failed for good.
  queue.complete({{d3.id, DeliveryStatus::kPending, 2, t0 + 50, claims[d3.id]},
                  {d4.id, DeliveryStatus::kFail, 8, std::nullopt, claims[d4.id]}},
                 t0 + 410);
  auto got3 = deliveries.get(d3.id);
  REQUIRE(got3);
  CHECK(got3->status == DeliveryStatus::kPending);
  CHECK(got3->attempts == 2);
  CHECK(got3->next_attempt_at == t0 + 50);
  CHECK(got3->updated_at == t0 + 410);
  CHECK(queue.next_due() == std::optional<TimeMs>(t0 + 50));
  CHECK(deliveries.get(d4.id)->status == DeliveryStatus::kFail);
  CHECK(deliveries.get(d4.id)->attempts == 8);

  st = deliveries.stats(ep1.id);
  CHECK(st.success == 1);
  CHECK(st.pending == 1);
  CHECK(st.fail == 1);
  CHECK(st.sending == 0);
  s2 = deliveries.stats(ep2.id);
  CHECK(s2.sending == 1);
  CHECK(s2.success + s2.fail + s2.pending == 0);

  CHECK(claim(t0 + 410) == std::set<std::string>{d3.id});
  queue.complete({{d2.id, DeliveryStatus::kSuccess, 1, std::nullopt, claims[d2.id]},
                  {d3.id, DeliveryStatus::kSuccess, 3, std::nullopt, claims[d3.id]}},
                 t0 + 420);
  CHECK_FALSE(queue.next_due());
  CHECK(deliveries.stats(ep2.id).success == 1);
}

TEST_CASE("QueueStore recover re-queues the endpoint's failed deliveries in [since, until)") {
  TestStore store;
  auto db = store.open();
  FakeListener listener(0);
  Listening listening(*db, listener);
  auto s = db->session();
  QueueStore& queue = s->queue();
  DeliveryStore& deliveries = s->deliveries();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  const auto ep = add_endpoint(*s, app.id, kUrl, "k", t0);
  const auto other = add_endpoint(*s, app.id, kUrl, "k", t0);
  const auto m = add_message(*s, app.id, "{}", t0);
  const TimeMs since = t0 - 10'000;
  const TimeMs until = t0 - 1000;
  const auto add = [&](const Endpoint& e, TimeMs created, DeliveryStatus status, int attempts) {
    Delivery d;
    d.id = new_id(kDeliveryPrefix, created);
    d.app_id = app.id;
    d.msg_id = m.id;
    d.endpoint_id = e.id;
    d.status = status;
    d.attempts = attempts;
    d.next_attempt_at = created;
    d.created_at = d.updated_at = created;
    deliveries.insert(d);
    return d;
  };
  const auto before = add(ep, since - 1, DeliveryStatus::kFail, 4);
  const auto first = add(ep, since, DeliveryStatus::kFail, 4);
  const auto middle = add(ep, since + 5000, DeliveryStatus::kFail, 2);
  const auto at_until = add(ep, until, DeliveryStatus::kFail, 4);
  const auto succeeded = add(ep, since + 100, DeliveryStatus::kSuccess, 1);
  const auto pending = add(ep, since + 200, DeliveryStatus::kPending, 1);
  const auto elsewhere = add(other, since + 300, DeliveryStatus::kFail, 4);

  const auto of_m = add(ep, since + 400, DeliveryStatus::kFail, 4);
  // A failed delivery of a message whose payload is gone (expunged) is left alone.
  const auto gone = add_message(*s, app.id, "{}", t0);
  Delivery copy = of_m;
  copy.id = new_id(kDeliveryPrefix, since + 401);
  copy.msg_id = gone.id;
  deliveries.insert(copy);
  const Delivery of_gone = copy;
  REQUIRE(s->messages().expunge(app.id, {gone.id}, t0).size() == 1);

  const TimeMs now = t0 + 5;
  std::string last;
  s->begin();
  // In pages of `limit`, in id order, from the watermark on.
  CHECK(queue.recover(ep.id, since, until, now, "", 1, &last) == 1);
  CHECK(last == first.id);
  // (Ids sort in the order this test made them: middle, then of_m.)
  CHECK(queue.recover(ep.id, since, until, now, last, 5, &last) == 2);
  CHECK(last == of_m.id);
  CHECK(queue.recover(ep.id, since, until, now, last, 5, &last) == 0);
  // Told once it is committed. (A store may wake the listener at other times too: a wake only
  // says that something may be due.)
  const int wakes_before = listener.calls().wakes;
  s->commit();
  CHECK(wait_until([&] { return listener.calls().wakes > wakes_before; }));
  for (const auto* d : {&first, &of_m, &middle}) {
    CAPTURE(d->id);
    auto got = deliveries.get(d->id);
    REQUIRE(got);
    CHECK(got->status == DeliveryStatus::kPending);
    CHECK(got->trigger == TriggerType::kManual);
    CHECK(got->next_attempt_at == now);
    CHECK(got->attempts == d->attempts);
    CHECK(got->updated_at == now);
    CHECK(got->created_at == d->created_at);
  }
  for (const auto* d : {&before, &at_until, &succeeded, &pending, &elsewhere, &of_gone}) {
    CAPTURE(d->id);
    auto got = deliveries.get(d->id);
    REQUIRE(got);
    CHECK(got->status == d->status);
    CHECK(got->trigger == TriggerType::kScheduled);
    CHECK(got->updated_at == d->updated_at);
  }

  // Due now: the next claim takes exactly the recovered ones and the one already pending.
  CHECK(id_set(claim_due(*s, now, 1000)) ==
        std::set<std::string>{first.id, of_m.id, middle.id, pending.id});

  // Nothing failed is left in the range. Outside a transaction it is told at once.
  last.clear();
  CHECK(queue.recover(ep.id, since, until, now + 1, "", 100, &last) == 0);
  const int wakes = listener.calls().wakes;
  CHECK(queue.recover(other.id, since, until, now + 1, "", 100, &last) == 1);
  CHECK(wait_until([&] { return listener.calls().wakes > wakes; }));
  CHECK(deliveries.get(elsewhere.id)->status == DeliveryStatus::kPending);
}

TEST_CASE("TaskStore lists filtered and paged; a lease holds a task for one claim at a time") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  TaskStore& tasks = s->tasks();
  const TimeMs t0 = wall_now();
  const auto make = [&](std::optional<std::string> app_id, const char* kind, int n) {
    BackgroundTask t;
    t.id = id_at(kTaskPrefix, t0, n);
    t.app_id = std::move(app_id);
    t.kind = kind;
    t.params_json = R"({"n":)" + std::to_string(n) + "}";
    t.created_at = t.updated_at = t0;
    tasks.insert(t);
    return t;
  };
  const auto t1 = make("app_a", kTaskRecover, 1);
  const auto t2 = make("app_b", kTaskRecover, 2);
  const auto t3 = make(std::nullopt, kTaskAppStats, 3);

  auto got = tasks.get(t1.id);
  REQUIRE(got);
  CHECK(got->app_id == "app_a");
  CHECK(got->kind == kTaskRecover);
  CHECK(got->status == TaskStatus::kRunning);
  CHECK(got->params_json == t1.params_json);
  CHECK(got->state_json == "{}");
  CHECK_FALSE(tasks.get("qtask_nope"));

  ListParams p;
  CHECK(ids_of(tasks.list(p, {}).items) == std::vector<std::string>{t3.id, t2.id, t1.id});
  p.descending = false;
  CHECK(ids_of(tasks.list(p, {}).items) == std::vector<std::string>{t1.id, t2.id, t3.id});
  p = ListParams{};
  p.limit = 2;
  auto page = tasks.list(p, {});
  CHECK(ids_of(page.items) == std::vector<std::string>{t3.id, t2.id});
  CHECK_FALSE(page.done);
  p.cursor = t2.id;
  page = tasks.list(p, {});
  CHECK(ids_of(page.items) == std::vector<std::string>{t1.id});
  CHECK(page.done);
  TaskFilter f;
  f.kind = kTaskRecover;
  CHECK(ids_of(tasks.list({}, f).items) == std::vector<std::string>{t2.id, t1.id});
  f.app_id = "app_a";
  CHECK(ids_of(tasks.list({}, f).items) == std::vector<std::string>{t1.id});

  // Claims take the oldest task no live lease holds, one claim each.
  s->begin();
  CHECK(tasks.claim(t0, 1000, 11)->id == t1.id);
  CHECK(tasks.claim(t0, 1000, 12)->id == t2.id);
  CHECK(tasks.claim(t0, 1000, 13)->id == t3.id);
  CHECK_FALSE(tasks.claim(t0 + 999, 1000, 14));
  s->commit();

  // A step holds its task only under its own claim, and extends the lease.
  s->begin();
  CHECK_FALSE(tasks.hold(t1.id, 12, t0 + 5000));
  REQUIRE(tasks.hold(t1.id, 11, t0 + 5000));
  BackgroundTask done = t1;
  done.status = TaskStatus::kFinished;
  done.state_json = R"({"cursor":"x"})";
  done.data_json = R"({"messagesSent":3})";
  done.updated_at = t0 + 10;
  tasks.save(done, 11);
  s->commit();
  got = tasks.get(t1.id);
  CHECK(got->status == TaskStatus::kFinished);
  CHECK(got->state_json == done.state_json);
  CHECK(got->data_json == done.data_json);
  CHECK(got->updated_at == t0 + 10);
  f = TaskFilter{};
  f.status = TaskStatus::kFinished;
  CHECK(ids_of(tasks.list({}, f).items) == std::vector<std::string>{t1.id});
  f.status = TaskStatus::kRunning;
  CHECK(ids_of(tasks.list({}, f).items) == std::vector<std::string>{t3.id, t2.id});

  // Once the lease lapses another claim takes the task over; the old claim no longer holds
  // it, and an ended task is never claimed again.
  s->begin();
  CHECK(tasks.claim(t0 + 1000, 1000, 21)->id == t2.id);
  CHECK_FALSE(tasks.hold(t2.id, 12, t0 + 9000));
  CHECK(tasks.hold(t2.id, 21, t0 + 9000));
  CHECK(tasks.claim(t0 + 1000, 1000, 22)->id == t3.id);
  CHECK(tasks.claim(t0 + 100'000, 1000, 23)->id == t2.id);  // t1 has ended
  s->commit();

  // Ended tasks go after their time; running ones stay.
  CHECK(tasks.purge(t0 + 10, 10) == 0);
  CHECK(tasks.purge(t0 + 11, 10) == 1);
  CHECK_FALSE(tasks.get(t1.id));
  CHECK(tasks.get(t2.id));
}

TEST_CASE(
    "MessageStore expunge drops payloads and fails deliveries not yet made; expunge_app pages") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  MessageStore& messages = s->messages();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  const auto other = add_app(*s, t0);
  const auto ep = add_endpoint(*s, app.id, kUrl, "k", t0);
  // Ids at known times (new_id never goes back before an id it made earlier in the process).
  const auto message_at = [&](const std::string& app_id, TimeMs t,
                              std::optional<std::string> event_id = std::nullopt) {
    Message m = make_message(app_id, t, "x", std::move(event_id));
    m.id = id_at(kMessagePrefix, t, 1);
    s->messages().insert(m);
    return m;
  };
  const auto m1 = message_at(app.id, t0, "evt-1");
  const auto m2 = message_at(app.id, t0 + 1);
  const auto m3 = message_at(app.id, t0 + 2);
  const auto theirs = message_at(other.id, t0 + 3);
  const auto pending = add_delivery(*s, m1, ep.id, t0, DeliveryStatus::kPending, t0 + 60'000);
  const auto sending = add_delivery(*s, m1, ep.id, t0, DeliveryStatus::kSending, t0 + 60'000);
  const auto done = add_delivery(*s, m1, ep.id, t0, DeliveryStatus::kSuccess);
  const auto of_m2 = add_delivery(*s, m2, ep.id, t0, DeliveryStatus::kPending);

  // By event id or id, within the app only.
  s->begin();
  const auto found = messages.expunge(app.id, {"evt-1", theirs.id, "msg_missing"}, t0 + 5);
  s->commit();
  CHECK(found == std::map<std::string, std::string>{{"evt-1", m1.id}});
  auto got = messages.get(app.id, m1.id);
  CHECK(got->payload_expired);
  CHECK(got->payload.empty());
  CHECK(messages.payloads({m1.id}).at(m1.id).empty());
  CHECK_FALSE(messages.get(other.id, theirs.id)->payload_expired);
  CHECK_FALSE(messages.get(app.id, m2.id)->payload_expired);
  auto d = s->deliveries().get(pending.id);
  CHECK(d->status == DeliveryStatus::kFail);
  CHECK(d->updated_at == t0 + 5);
  CHECK(s->deliveries().get(sending.id)->status == DeliveryStatus::kSending);
  CHECK(s->deliveries().get(done.id)->status == DeliveryStatus::kSuccess);
  CHECK(s->deliveries().get(of_m2.id)->status == DeliveryStatus::kPending);
  // Nothing due is left of it: a claim takes the one of m2 only (the sending one's lease holds).
  CHECK(id_set(claim_due(*s, t0 + 10, 1000)) == std::set<std::string>{of_m2.id});

  // The rest of the app's messages in pages: m1 is done already; others' untouched.
  const auto later = message_at(app.id, t0 + 100);
  std::string last;
  s->begin();
  CHECK(messages.expunge_app(app.id, t0 + 100, "", 1, &last, t0 + 6) == 1);
  CHECK(last == m2.id);
  CHECK(messages.expunge_app(app.id, t0 + 100, last, 5, &last, t0 + 6) == 1);
  CHECK(last == m3.id);
  CHECK(messages.expunge_app(app.id, t0 + 100, last, 5, &last, t0 + 6) == 0);
  s->commit();
  CHECK(messages.get(app.id, m3.id)->payload_expired);
  CHECK_FALSE(messages.get(app.id, later.id)->payload_expired);  // made after `before`
  CHECK_FALSE(messages.get(other.id, theirs.id)->payload_expired);
}

TEST_CASE("MessageStore usage counts messages in a window and the endpoints each went to") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  const auto a = add_endpoint(*s, app.id, kUrl, "k", t0);
  const auto b = add_endpoint(*s, app.id, kUrl, "k", t0);
  std::vector<Message> ms;
  for (int i = 0; i < 3; ++i) {
    Message m = make_message(app.id, t0 + 10 * i, "x");
    m.id = id_at(kMessagePrefix, t0 + 10 * i, 1);
    s->messages().insert(m);
    ms.push_back(m);
  }
  add_delivery(*s, ms[0], a.id, t0);
  add_delivery(*s, ms[0], a.id, t0);  // a resend: the same destination
  add_delivery(*s, ms[0], b.id, t0);
  add_delivery(*s, ms[1], b.id, t0);
  auto u = s->messages().usage(app.id, t0, t0 + 30, "", 10);
  CHECK(u.messages == 3);
  CHECK(u.destinations == 3);
  CHECK(u.last_id == ms[2].id);
  u = s->messages().usage(app.id, t0, t0 + 30, "", 1);
  CHECK(u.messages == 1);
  CHECK(u.destinations == 2);
  CHECK(u.last_id == ms[0].id);
  u = s->messages().usage(app.id, t0 + 10, t0 + 20, "", 10);
  CHECK(u.messages == 1);
  CHECK(u.destinations == 1);
  u = s->messages().usage(app.id, t0, t0 + 30, ms[2].id, 10);
  CHECK(u.messages == 0);
  CHECK(u.last_id.empty());
}

TEST_CASE(
    "MessageStore list: missing_endpoint_id and status_code_class; AttemptStore expunge_response") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  const auto ep = add_endpoint(*s, app.id, kUrl, "k", t0);
  const auto m1 = add_message(*s, app.id, "{}", t0);
  const auto m2 = add_message(*s, app.id, "{}", t0);
  const auto m3 = add_message(*s, app.id, "{}", t0);
  const auto d1 = add_delivery(*s, m1, ep.id, t0, DeliveryStatus::kFail);
  const auto d2 = add_delivery(*s, m2, ep.id, t0, DeliveryStatus::kSuccess);
  s->attempts().insert({make_attempt(d1, t0, DeliveryStatus::kFail, 200)});
  s->attempts().insert({make_attempt(d1, t0, DeliveryStatus::kFail, 503)});  // the latest
  s->attempts().insert({make_attempt(d2, t0, DeliveryStatus::kSuccess, 204)});
  MessageFilter f;
  f.missing_endpoint_id = ep.id;
  CHECK(ids_of(s->messages().list(app.id, {}, f).items) == std::vector<std::string>{m3.id});
  f = MessageFilter{};
  f.endpoint_id = ep.id;
  f.status_code_class = 500;
  CHECK(ids_of(s->messages().list(app.id, {}, f).items) == std::vector<std::string>{m1.id});
  f.status_code_class = 200;
  CHECK(ids_of(s->messages().list(app.id, {}, f).items) == std::vector<std::string>{m2.id});
  f.status_code_class = 0;
  CHECK(s->messages().list(app.id, {}, f).items.empty());

  const auto latest = s->attempts().latest(ep.id);
  REQUIRE(latest);
  CHECK_FALSE(latest->response_expunged);
  CHECK_FALSE(s->attempts().expunge_response("app_other", latest->id));
  CHECK(s->attempts().expunge_response(app.id, latest->id));
  const auto got = s->attempts().get(app.id, latest->id);
  CHECK(got->response.empty());
  CHECK(got->response_expunged);
  CHECK(got->response_status_code == latest->response_status_code);
  CHECK_FALSE(s->attempts().expunge_response(app.id, "atmpt_nope"));
}

TEST_CASE("DeliveryStats add counts by status; overall: fail, else sending, else pending") {
  DeliveryStats st;
  CHECK_FALSE(st.overall().has_value());
  st.add(DeliveryStatus::kSuccess, 2);
  CHECK(st.overall() == std::optional<DeliveryStatus>(DeliveryStatus::kSuccess));
  st.add(DeliveryStatus::kPending, 1);
  CHECK(st.overall() == std::optional<DeliveryStatus>(DeliveryStatus::kPending));
  st.add(DeliveryStatus::kSending, 3);
  CHECK(st.overall() == std::optional<DeliveryStatus>(DeliveryStatus::kSending));
  st.add(DeliveryStatus::kFail, 1);
  CHECK(st.overall() == std::optional<DeliveryStatus>(DeliveryStatus::kFail));
  st.add(DeliveryStatus::kSuccess, 5);
  CHECK(st.success == 7);
  CHECK(st.pending == 1);
  CHECK(st.sending == 3);
  CHECK(st.fail == 1);
}

// ---------------------------------------------------------------------------------------------
// Enqueuer and the queue's listener

TEST_CASE("Enqueuer publishes to the enabled endpoints that accept the message") {
  TestStore store;
  auto db = store.open();
  ManualClock clock(wall_now());
  const TimeMs now = clock.now_ms();
  Enqueuer enqueuer(clock);
  auto s = db->session();
  const auto app = add_app(*s, now);
  const auto all = add_endpoint(*s, app.id, kUrl, "k", now);
  auto typed = make_endpoint(app.id, now, std::nullopt);
  typed.event_types = std::vector<std::string>{"a.b"};
  s->endpoints().insert(typed, hmac_key("k"));
  auto eu = make_endpoint(app.id, now, std::nullopt);
  eu.channels = std::vector<std::string>{"eu"};
  s->endpoints().insert(eu, hmac_key("k"));
  add_endpoint(*s, app.id, kUrl, "k", now, {}, true);  // disabled: never a target
  const auto targets = [&](const Message& m) {
    std::set<std::string> out;
    for (const auto& d : s->deliveries().for_message(m.id)) out.insert(d.endpoint_id);
    return out;
  };
  const auto in_transaction = [&](const std::function<void()>& work) {
    s->begin();
    work();
    s->commit();
  };

  const auto m1 = make_message(app.id, now, "a.b");
  in_transaction([&] { CHECK(enqueuer.publish(*s, m1) == 2); });
  CHECK(s->messages().get(app.id, m1.id).has_value());
  CHECK(targets(m1) == std::set<std::string>{all.id, typed.id});
  for (const auto& d : s->deliveries().for_message(m1.id)) {
    CHECK(d.status == DeliveryStatus::kPending);  // no listener: left to be claimed
    CHECK(d.next_attempt_at == now);
    CHECK(d.attempts == 0);
    CHECK(d.trigger == TriggerType::kScheduled);
    CHECK(d.created_at == now);
    CHECK(d.app_id == app.id);
  }
  CHECK(id_set(claim_due(*s, now, 1000)).size() == 2);

  const auto m2 = make_message(app.id, now, "c.d", std::nullopt, std::vector<std::string>{"eu"});
  in_transaction([&] { CHECK(enqueuer.publish(*s, m2) == 2); });
  CHECK(targets(m2) == std::set<std::string>{all.id, eu.id});

  // A message nobody takes is stored all the same.
  const auto m3 = make_message(app.id, now, "c.d", std::nullopt, std::vector<std::string>{"us"});
  in_transaction([&] { CHECK(enqueuer.publish(*s, m3) == 1); });
  const auto m4 = make_message(add_app(*s, now).id, now, "a.b");
  in_transaction([&] { CHECK(enqueuer.publish(*s, m4) == 0); });
  CHECK(s->messages().get(m4.app_id, m4.id).has_value());
  CHECK(targets(m4).empty());

  // publish_to: one endpoint whatever its filters; redeliver: once more, by hand.
  const auto m5 = make_message(app.id, now, "not.a.b");
  in_transaction([&] { enqueuer.publish_to(*s, m5, typed.id); });
  CHECK(targets(m5) == std::set<std::string>{typed.id});
  clock.advance(500);
  in_transaction([&] { enqueuer.redeliver(*s, m1, all.id); });
  const auto again = s->deliveries().for_message(m1.id);
  REQUIRE(again.size() == 3);
  int manual = 0;
  for (const auto& d : again) {
    if (d.trigger != TriggerType::kManual) continue;
    ++manual;
    CHECK(d.endpoint_id == all.id);
    CHECK(d.status == DeliveryStatus::kPending);
    CHECK(d.next_attempt_at == clock.now_ms());
  }
  CHECK(manual == 1);
}

TEST_CASE("Enqueuer: a scheduled message's deliveries wait for its deliver_at; a resend does not") {
  TestStore store;
  auto db = store.open();
  ManualClock clock(wall_now());
  const TimeMs now = clock.now_ms();
  const auto f = add_fanout(*db, now, 3);
  Enqueuer enqueuer(clock);
  // Room to hand all of them over: a scheduled message must not take it.
  FakeListener listener(100);
  Listening listening(*db, listener);
  auto s = db->session();

  auto m = make_message(f.app.id, now, "a.b");
  m.deliver_at = now + 5000;
  s->begin();
  CHECK(enqueuer.publish(*s, m) == 3);
  s->commit();
  CHECK(listener.calls().reserved == 0);
  CHECK(listener.calls().handed.empty());
  CHECK(s->messages().get(f.app.id, m.id)->deliver_at == now + 5000);
  const auto rows = s->deliveries().for_message(m.id);
  REQUIRE(rows.size() == 3);
  for (const auto& d : rows) {
    CHECK(d.status == DeliveryStatus::kPending);
    CHECK(d.next_attempt_at == now + 5000);
  }
  CHECK(s->queue().next_due() == now + 5000);
  CHECK(claim_due(*s, now + 4999, 60'000).empty());

  // A resend is sent now, scheduled message or not.
  s->begin();
  enqueuer.redeliver(*s, m, f.endpoints[0].id);
  s->commit();
  // Due now: handed straight to the listener (SQLite's fast path) or claimable at once.
  auto resent = claim_due(*s, now, 60'000);
  for (const auto& h : listener.calls().handed) {
    resent.insert(resent.end(), h.deliveries.begin(), h.deliveries.end());
  }
  REQUIRE(resent.size() == 1);
  CHECK(resent[0].trigger == TriggerType::kManual);
  CHECK(resent[0].endpoint_id == f.endpoints[0].id);
  CHECK(id_set(claim_due(*s, now + 5000, 60'000)) == id_set(rows));

  // A time already past is due at once; without one, the message reads back with none.
  auto late = make_message(f.app.id, now, "a.b");
  late.deliver_at = now - 60'000;
  auto plain = make_message(f.app.id, now, "a.b");
  s->begin();
  enqueuer.publish(*s, late);
  enqueuer.publish(*s, plain);
  s->commit();
  const auto handed = listener.handed_ids();
  for (const auto& d : s->deliveries().for_message(late.id)) {
    CHECK((handed.count(d.id) > 0 || d.next_attempt_at == now));
  }
  CHECK_FALSE(s->messages().get(f.app.id, plain.id)->deliver_at.has_value());
}

TEST_CASE("Enqueuer::enabled_endpoints is kept while the app's endpoints_version holds") {
  TestStore store;
  auto db = store.open();
  // Another process on the same store (on SQLite: another Database on the same file).
  auto other = store.open();
  ManualClock clock(wall_now());
  const TimeMs now = clock.now_ms();
  Enqueuer enqueuer(clock);
  auto s = db->session();
  auto o = other->session();
  const auto app = add_app(*s, now);
  const auto ep = add_endpoint(*s, app.id, kUrl, "k", now);
  const auto ids = [&](Session& session) {
    return ids_of(*enqueuer.enabled_endpoints(session, app.id));
  };
  const auto version = [&](Session& session) {
    return session.apps().endpoint_versions({app.id}).at(app.id);
  };

  const auto first = enqueuer.enabled_endpoints(*s, app.id);
  CHECK(ids_of(*first) == std::vector<std::string>{ep.id});
  CHECK(enqueuer.enabled_endpoints(*s, app.id) == first);  // the same list: kept
  // However long: the version, not the time, decides.
  clock.advance(3'600'000);
  CHECK(enqueuer.enabled_endpoints(*s, app.id) == first);

  // Every kind of endpoint write bumps the version, through whichever Database (process) it
  // is made; the next call sees it at once, with no notification and no clock.
  int64_t v = version(*s);
  const auto second = add_endpoint(*o, app.id, kUrl, "k", now);
  CHECK(version(*s) > v);
  CHECK(ids(*s) == std::vector<std::string>{ep.id, second.id});

  v = version(*s);
  CHECK(o->endpoints().disable(ep.id, "by hand", now));
  CHECK(version(*s) > v);
  CHECK(ids(*s) == std::vector<std::string>{second.id});

  v = version(*s);
  auto changed = *o->endpoints().get(app.id, second.id);
  changed.url = "http://127.0.0.1:9/elsewhere";
  CHECK(o->endpoints().update(changed));
  CHECK(version(*s) > v);
  CHECK(enqueuer.enabled_endpoints(*s, app.id)->front().url == changed.url);

  v = version(*s);
  o->endpoints().rotate_key(second.id, hmac_key("new key"), 0, now);
  CHECK(version(*s) > v);

  // A write that rolls back bumps nothing, and the list kept stays.
  const auto kept = enqueuer.enabled_endpoints(*s, app.id);
  v = version(*s);
  o->begin();
  o->endpoints().remove(app.id, second.id);
  o->rollback();
  CHECK(version(*s) == v);
  CHECK(enqueuer.enabled_endpoints(*s, app.id) == kept);

  v = version(*s);
  CHECK(o->endpoints().remove(app.id, second.id));
  CHECK(version(*s) > v);
  CHECK(ids(*s).empty());

  // Given by the caller (who read the app just now), the version is not read again.
  CHECK(enqueuer.enabled_endpoints(*s, app.id, version(*s)) ==
        enqueuer.enabled_endpoints(*s, app.id));
  // No such application: nothing.
  CHECK(enqueuer.enabled_endpoints(*s, new_id(kAppPrefix, now))->empty());
}

TEST_CASE("enqueue: the listener hears of committed deliveries; a rollback leaves nothing") {
  TestStore store;
  auto db = store.open();
  ManualClock clock(wall_now());
  FakeListener listener(2);
  Listening listening(*db, listener);
  const auto f = add_fanout(*db, clock.now_ms(), 3);
  Enqueuer enqueuer(clock);
  const auto m = make_message(f.app.id, clock.now_ms(), "a.b");

  SUBCASE("committed: woken or handed the deliveries") {
    {
      auto s = db->begin();
      CHECK(enqueuer.publish(*s, m) == 3);
      s->commit();
    }
    REQUIRE(wait_until([&] {
      const auto c = listener.calls();
      return c.wakes > 0 || !c.handed.empty();
    }));
    const auto c = listener.calls();
    const auto handed = listener.handed_ids();
    // Room that was reserved was either used for a hand-over or given back.
    CHECK(c.reserved - c.released == static_cast<int>(handed.size()));
    // Each delivery is the listener's (handed over, claimed) or waits in the queue, due now.
    auto s = db->session();
    CHECK(s->messages().get(f.app.id, m.id).has_value());
    const auto rows = s->deliveries().for_message(m.id);
    REQUIRE(rows.size() == 3);
    for (const auto& d : rows) {
      CAPTURE(d.id);
      if (handed.count(d.id) > 0) {
        CHECK(d.status == DeliveryStatus::kSending);
      } else {
        CHECK(d.status == DeliveryStatus::kPending);
        CHECK(d.next_attempt_at == clock.now_ms());
      }
    }
    CHECK(claim_due(*s, clock.now_ms(), 1000).size() == 3 - handed.size());
  }
  SUBCASE("rolled back: no message, no delivery, no room kept, nothing handed over") {
    {
      auto s = db->begin();
      CHECK(enqueuer.publish(*s, m) == 3);
      s->rollback();
    }
    const auto c = listener.calls();
    CHECK(c.handed.empty());
    CHECK(c.reserved == c.released);
    auto s = db->session();
    CHECK_FALSE(s->messages().get(f.app.id, m.id).has_value());
    CHECK(s->deliveries().for_message(m.id).empty());
    for (const auto& ep : f.endpoints) CHECK(s->deliveries().stats(ep.id).pending == 0);
    CHECK(claim_due(*s, clock.now_ms(), 1000).empty());
  }
}

// ---------------------------------------------------------------------------------------------
// WriteBatcher

TEST_CASE(
    "WriteBatcher shares commits between concurrent callers; a failing work undoes only itself") {
  TestStore store;
  auto db = store.open();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*db->session(), t0);
  WriteBatcher batcher(*db);
  constexpr int kThreads = 16;
  constexpr int kPerThread = 40;
  std::atomic<int> failures{0};
  std::vector<std::vector<std::string>> undone(kThreads);  // messages of works that failed
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < kPerThread; ++j) {
        const auto m = make_message(app.id, t0, "ok");
        try {
          batcher.run([&](Session& s) {
            s.messages().insert(m);
            // Every tenth work writes, then fails: its message must not survive.
            if (j % 10 == 9) throw std::runtime_error("work " + std::to_string(i));
          });
        } catch (const std::runtime_error& e) {
          CHECK(std::string(e.what()) == "work " + std::to_string(i));
          undone[static_cast<size_t>(i)].push_back(m.id);
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures.load() == kThreads * kPerThread / 10);
  auto s = db->session();
  const auto count = [&] {
    return all_pages([&](const ListParams& p) { return s->messages().list(app.id, p, {}); }).size();
  };
  CHECK(count() == kThreads * kPerThread * 9 / 10);
  for (const auto& ids : undone) {
    for (const auto& id : ids) CHECK_FALSE(s->messages().get(app.id, id).has_value());
  }
  // Group commit: far fewer transactions than works (each work alone would be one).
  CHECK(batcher.commits() < static_cast<uint64_t>(kThreads * kPerThread));
  CHECK(batcher.commits() > 0);

  // A constraint error inside a work reaches its caller as a DbError, nothing else changes.
  const auto dup = make_message(app.id, t0, "dup");
  batcher.run([&](Session& w) { w.messages().insert(dup); });
  CHECK(throws_constraint([&] { batcher.run([&](Session& w) { w.messages().insert(dup); }); }));
  CHECK(s->messages().get(app.id, dup.id).has_value());
  CHECK(count() == kThreads * kPerThread * 9 / 10 + 1);
}

// ---------------------------------------------------------------------------------------------
// AttemptStore

TEST_CASE("AttemptStore lists by message and by endpoint, newest first, filtered and paged") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  AttemptStore& attempts = s->attempts();
  const TimeMs t0 = wall_now();
  const auto app = add_app(*s, t0);
  const auto other = add_app(*s, t0);
  const auto ep1 = add_endpoint(*s, app.id, kUrl, "k1", t0);
  const auto ep2 = add_endpoint(*s, app.id, kUrl, "k2", t0);
  const auto m1 = add_message(*s, app.id, "{}", t0);
  const auto m2 = add_message(*s, app.id, "{}", t0);
  const auto d11 = add_delivery(*s, m1, ep1.id, t0);
  const auto d12 = add_delivery(*s, m1, ep2.id, t0);
  const auto d21 = add_delivery(*s, m2, ep1.id, t0);

  // In creation order; ids from one process sort by creation.
  std::vector<Attempt> made = {
      make_attempt(d11, t0 + 1, DeliveryStatus::kFail, 500),     // 0
      make_attempt(d12, t0 + 2, DeliveryStatus::kFail, 0),       // 1
      make_attempt(d11, t0 + 3, DeliveryStatus::kFail, 502),     // 2
      make_attempt(d21, t0 + 4, DeliveryStatus::kSuccess, 200),  // 3
      make_attempt(d12, t0 + 5, DeliveryStatus::kSuccess, 204),  // 4
      make_attempt(d11, t0 + 6, DeliveryStatus::kSuccess, 201),  // 5
  };
  made[1].response = "Connection refused";
  made[4].trigger = TriggerType::kManual;
  attempts.insert({made[0]});
  attempts.insert(std::vector<Attempt>(made.begin() + 1, made.end()));
  attempts.insert({});
  const auto ids = [&](std::initializer_list<int> idx) {
    std::vector<std::string> out;
    for (int i : idx) out.push_back(made[static_cast<size_t>(i)].id);
    return out;
  };

  auto got = attempts.get(app.id, made[4].id);
  REQUIRE(got);
  CHECK(got->msg_id == m1.id);
  CHECK(got->endpoint_id == ep2.id);
  CHECK(got->delivery_id == d12.id);
  CHECK(got->url == made[4].url);
  CHECK(got->response_status_code == 204);
  CHECK(got->response == "body 204");
  CHECK(got->response_duration_ms == 12);
  CHECK(got->status == DeliveryStatus::kSuccess);
  CHECK(got->trigger == TriggerType::kManual);
  CHECK(got->request_headers_json == made[4].request_headers_json);
  CHECK(got->timestamp == t0 + 5);
  CHECK(attempts.get(app.id, made[1].id)->response == "Connection refused");
  CHECK_FALSE(attempts.get(other.id, made[4].id));
  CHECK(attempts.latest(ep1.id)->id == made[5].id);
  CHECK_FALSE(attempts.latest(new_id(kEndpointPrefix, t0)).has_value());

  ListParams p;
  CHECK(ids_of(attempts.list_by_message(app.id, m1.id, p, {}).items) == ids({5, 4, 2, 1, 0}));
  CHECK(ids_of(attempts.list_by_message(app.id, m2.id, p, {}).items) == ids({3}));
  CHECK(ids_of(attempts.list_by_endpoint(app.id, ep1.id, p, {}).items) == ids({5, 3, 2, 0}));
  CHECK(ids_of(attempts.list_by_endpoint(app.id, ep2.id, p, {}).items) == ids({4, 1}));
  CHECK(attempts.list_by_message(other.id, m1.id, p, {}).items.empty());
  CHECK(attempts.list_by_endpoint(other.id, ep1.id, p, {}).items.empty());

  AttemptFilter success;
  success.status = DeliveryStatus::kSuccess;
  AttemptFilter fail;
  fail.status = DeliveryStatus::kFail;
  CHECK(ids_of(attempts.list_by_message(app.id, m1.id, p, success).items) == ids({5, 4}));
  CHECK(ids_of(attempts.list_by_message(app.id, m1.id, p, fail).items) == ids({2, 1, 0}));
  CHECK(ids_of(attempts.list_by_endpoint(app.id, ep1.id, p, fail).items) == ids({2, 0}));
  AttemptFilter on_ep1;
  on_ep1.endpoint_id = ep1.id;
  CHECK(ids_of(attempts.list_by_message(app.id, m1.id, p, on_ep1).items) == ids({5, 2, 0}));

  p.limit = 2;
  auto p1 = attempts.list_by_message(app.id, m1.id, p, {});
  CHECK(ids_of(p1.items) == ids({5, 4}));
  CHECK_FALSE(p1.done);
  p.cursor = p1.items.back().id;
  auto p2 = attempts.list_by_message(app.id, m1.id, p, {});
  CHECK(ids_of(p2.items) == ids({2, 1}));
  CHECK_FALSE(p2.done);
  p.cursor = p2.items.back().id;
  auto p3 = attempts.list_by_message(app.id, m1.id, p, {});
  CHECK(ids_of(p3.items) == ids({0}));
  CHECK(p3.done);

  ListParams fp;
  fp.limit = 1;
  auto f1 = attempts.list_by_endpoint(app.id, ep1.id, fp, fail);
  CHECK(ids_of(f1.items) == ids({2}));
  CHECK_FALSE(f1.done);
  fp.cursor = f1.items.back().id;
  auto f2 = attempts.list_by_endpoint(app.id, ep1.id, fp, fail);
  CHECK(ids_of(f2.items) == ids({0}));
  CHECK(f2.done);

  ListParams back;
  back.limit = 2;
  back.backwards = true;
  back.cursor = made[1].id;
  auto b = attempts.list_by_message(app.id, m1.id, back, {});
  CHECK(ids_of(b.items) == ids({4, 2}));
  CHECK_FALSE(b.done);
}

TEST_CASE("AttemptStore purge deletes attempts made before the cutoff, oldest first, up to limit") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  AttemptStore& attempts = s->attempts();
  const TimeMs t0 = wall_now() - 3'600'000;
  const auto app = add_app(*s, wall_now());
  const auto ep = add_endpoint(*s, app.id, kUrl, "k", t0);
  const auto m = add_message(*s, app.id, "{}", t0);
  const auto d = add_delivery(*s, m, ep.id, t0);
  const TimeMs cutoff = t0 + 10'000;
  std::vector<Attempt> made;
  int n = 0;
  for (TimeMs at : {t0 + 2000, t0, t0 + 1000, cutoff, cutoff + 1000}) {
    auto a = make_attempt(d, at, DeliveryStatus::kFail, 500);
    a.id = id_at(kAttemptPrefix, at, ++n);
    made.push_back(a);
  }
  attempts.insert(made);
  const auto exists = [&](const Attempt& a) { return attempts.get(app.id, a.id).has_value(); };

  CHECK(attempts.purge(cutoff, 1) == 1);
  CHECK_FALSE(exists(made[1]));  // the oldest
  CHECK(exists(made[2]));
  CHECK(exists(made[0]));
  CHECK(attempts.purge(cutoff, 10) == 2);
  CHECK_FALSE(exists(made[0]));
  CHECK_FALSE(exists(made[2]));
  CHECK(attempts.purge(cutoff, 10) == 0);
  CHECK(exists(made[3]));  // made at the cutoff: not before it
  CHECK(exists(made[4]));
  CHECK(attempts.list_by_endpoint(app.id, ep.id, ListParams{}, {}).items.size() == 2);
  // The message and its delivery stay.
  CHECK(s->messages().get(app.id, m.id).has_value());
  CHECK(s->deliveries().get(d.id).has_value());
}

// ---------------------------------------------------------------------------------------------
// TokenStore

TEST_CASE("TokenStore::expire_app_tokens: the app's tokens, by session if asked, never sooner") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  TokenStore& tokens = s->tokens();
  const TimeMs now = wall_now();
  const auto app = add_app(*s, now);
  const auto other = add_app(*s, now);
  int n = 0;
  const auto add = [&](std::optional<std::string> app_id, std::optional<std::string> session,
                       std::optional<TimeMs> expires) {
    TokenRecord r;
    r.id = new_id(kTokenPrefix, now);
    r.hash = "hash-" + std::to_string(++n);
    r.app_id = std::move(app_id);
    r.name = "t";
    r.created_at = now;
    r.expires_at = expires;
    r.session_id = std::move(session);
    tokens.insert(r);
    return r.hash;
  };
  const auto plain = add(app.id, std::nullopt, std::nullopt);
  const auto alice = add(app.id, "alice", now + 3'600'000);
  const auto bob = add(app.id, "bob", std::nullopt);
  const auto soon = add(app.id, "alice", now + 1000);  // already sooner than asked: kept
  const auto elsewhere = add(other.id, "alice", std::nullopt);
  const auto admin = add(std::nullopt, std::nullopt, std::nullopt);
  const auto expiry = [&](const std::string& hash) {
    return tokens.find_by_hash(hash)->expires_at;
  };

  CHECK(tokens.find_by_hash(alice)->session_id == "alice");
  CHECK_FALSE(tokens.find_by_hash(plain)->session_id.has_value());
  CHECK(tokens.expire_app_tokens(app.id, now + 5000, {"alice", "carol"}) == 1);
  CHECK(expiry(alice) == now + 5000);
  CHECK(expiry(soon) == now + 1000);
  CHECK_FALSE(expiry(bob).has_value());
  CHECK_FALSE(expiry(plain).has_value());
  CHECK_FALSE(expiry(elsewhere).has_value());

  CHECK(tokens.expire_app_tokens(app.id, now + 2000, {}) == 3);  // plain, alice, bob
  for (const auto& h : {plain, alice, bob}) CHECK(expiry(h) == now + 2000);
  CHECK(expiry(soon) == now + 1000);
  CHECK_FALSE(expiry(elsewhere).has_value());
  CHECK_FALSE(expiry(admin).has_value());
  CHECK(tokens.expire_app_tokens("app_unknown", now, {}) == 0);
}

TEST_CASE("TokenStore insert, insert_first_admin, find_by_hash, count_admin, purge_expired") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  TokenStore& tokens = s->tokens();
  const TimeMs now = wall_now();
  const auto app = add_app(*s, now);

  const auto make = [&](std::string hash, std::optional<std::string> app_id,
                        std::optional<TimeMs> expires) {
    TokenRecord r;
    r.id = new_id(kTokenPrefix, now);
    r.hash = std::move(hash);
    r.app_id = std::move(app_id);
    r.name = "token " + r.id;
    r.created_at = now;
    r.expires_at = expires;
    return r;
  };
  const auto scoped = make("hash-scoped", app.id, std::nullopt);
  const auto admin = make("\x00\x01hash-admin\xff"s, std::nullopt, std::nullopt);
  const auto expiring = make("hash-expiring", std::nullopt, now + 100);
  tokens.insert(scoped);
  // The first admin token goes in (a scoped token is none); a second one does not.
  CHECK(tokens.insert_first_admin(admin));
  CHECK_FALSE(tokens.insert_first_admin(make("hash-late", std::nullopt, std::nullopt)));
  CHECK_FALSE(tokens.find_by_hash("hash-late"));
  tokens.insert(expiring);
  CHECK(throws_constraint([&] { tokens.insert(make("hash-scoped", std::nullopt, {})); }));

  auto found = tokens.find_by_hash(admin.hash);
  REQUIRE(found);
  CHECK(found->id == admin.id);
  CHECK(found->hash == admin.hash);
  CHECK_FALSE(found->app_id);
  CHECK(found->name == admin.name);
  CHECK_FALSE(found->expires_at);
  CHECK_FALSE(found->read_only);
  CHECK_FALSE(tokens.find_by_hash("\x00\x01"s));  // a prefix is not a match
  auto found_scoped = tokens.find_by_hash("hash-scoped");
  REQUIRE(found_scoped);
  CHECK(found_scoped->app_id == std::optional<std::string>(app.id));
  CHECK(tokens.find_by_hash("hash-expiring")->expires_at == std::optional<TimeMs>(now + 100));

  CHECK(tokens.count_admin() == 2);
  CHECK(tokens.list().size() == 3);

  tokens.purge_expired(now + 99);
  CHECK(tokens.count_admin() == 2);
  tokens.purge_expired(now + 100);
  CHECK(tokens.count_admin() == 1);
  CHECK_FALSE(tokens.find_by_hash("hash-expiring"));
  CHECK(tokens.find_by_hash(admin.hash));
  CHECK(tokens.find_by_hash("hash-scoped"));

  CHECK(tokens.remove(scoped.id));
  CHECK_FALSE(tokens.remove(scoped.id));
  CHECK(ids_of(tokens.list()) == std::vector<std::string>{admin.id});

  // Read-only and feature flags survive the round trip; none by default.
  auto ro = make("hash-ro", app.id, std::nullopt);
  ro.read_only = true;
  ro.feature_flags = {"beta", "billing-v2"};
  tokens.insert(ro);
  CHECK(tokens.find_by_hash("hash-ro")->read_only);
  CHECK(tokens.find_by_hash("hash-ro")->feature_flags == ro.feature_flags);
  CHECK(tokens.find_by_hash(admin.hash)->feature_flags.empty());
}

// ---------------------------------------------------------------------------------------------
// IdempotencyStore

TEST_CASE("IdempotencyStore claim, complete, release, expiry and purge") {
  TestStore store;
  auto db = store.open();
  auto s = db->session();
  IdempotencyStore& keys = s->idempotency();
  using State = IdempotencyClaim::State;
  const TimeMs t0 = 1'000'000;

  auto first = keys.claim("tok", "k1", "/api/v1/app", t0, 0);
  CHECK(first.state == State::kClaimed);
  CHECK(keys.claim("tok", "k1", "/api/v1/app", t0 + 1, 0).state == State::kInProgress);
  // Scope, key and path each make a separate entry.
  CHECK(keys.claim("tok", "k1", "/api/v1/other", t0, 0).state == State::kClaimed);
  CHECK(keys.claim("tok2", "k1", "/api/v1/app", t0, 0).state == State::kClaimed);
  CHECK(keys.claim("tok", "k2", "/api/v1/app", t0, 0).state == State::kClaimed);

  keys.complete("tok", "k1", "/api/v1/app", 201, R"({"id":"app_1"})");
  auto replay = keys.claim("tok", "k1", "/api/v1/app", t0 + 2, 0);
  CHECK(replay.state == State::kCompleted);
  CHECK(replay.status_code == 201);
  CHECK(replay.body == R"({"id":"app_1"})");

  // release() frees an in-progress key, never a completed one.
  keys.release("tok", "k2", "/api/v1/app");
  CHECK(keys.claim("tok", "k2", "/api/v1/app", t0 + 3, 0).state == State::kClaimed);
  keys.release("tok", "k1", "/api/v1/app");
  CHECK(keys.claim("tok", "k1", "/api/v1/app", t0 + 4, 0).state == State::kCompleted);

  // Entries created before expired_before are replaced by a fresh claim.
  auto fresh = keys.claim("tok", "k1", "/api/v1/app", t0 + 10'000, t0 + 1);
  CHECK(fresh.state == State::kClaimed);
  CHECK(keys.claim("tok", "k1", "/api/v1/app", t0 + 10'001, t0 + 1).state == State::kInProgress);
  // An entry created exactly at expired_before still counts.
  CHECK(keys.claim("tok", "k1", "/api/v1/app", t0 + 10'002, t0 + 10'000).state ==
        State::kInProgress);

  // Left now: (tok,k1,/app)@t0+10000, (tok,k1,/other)@t0, (tok2,k1,/app)@t0, (tok,k2,/app)@t0+3.
  CHECK(keys.purge(t0 + 5, 2) == 2);
  CHECK(keys.purge(t0 + 5, 10) == 1);
  CHECK(keys.purge(t0 + 5, 10) == 0);
  CHECK(keys.claim("tok", "k1", "/api/v1/app", t0 + 10'003, 0).state == State::kInProgress);
  CHECK(keys.purge(t0 + 1'000'000, 10) == 1);  // the fresh entry was the only one left
  CHECK(keys.claim("tok", "k1", "/api/v1/app", t0 + 10'004, 0).state == State::kClaimed);
}

// ---------------------------------------------------------------------------------------------
// Database sessions

TEST_CASE("Database sessions serve concurrent writers through separate connections") {
  TestStore store;
  auto db = store.open(4);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  std::atomic<int> errors{0};
  std::vector<std::vector<std::string>> made(kThreads);
  std::vector<std::thread> threads;
  const TimeMs now = wall_now();
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      try {
        for (int j = 0; j < kPerThread; ++j) {
          auto s = db->begin();
          auto app = add_app(*s, now, "app", "t" + std::to_string(i) + "-" + std::to_string(j));
          s->commit();
          made[static_cast<size_t>(i)].push_back(app.id);
        }
      } catch (...) {
        ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(errors.load() == 0);

  auto s = db->session();
  CHECK(all_pages([&](const ListParams& p) { return s->apps().list(p); }).size() ==
        kThreads * kPerThread);
  int found = 0;
  for (const auto& ids : made) {
    for (const auto& id : ids) found += s->apps().get(id).has_value() ? 1 : 0;
  }
  CHECK(found == kThreads * kPerThread);
}

TEST_CASE("Database bounds its pooled sessions: session() waits for one to be free") {
  TestStore store;
  auto db = store.open(1);
  std::atomic<bool> acquired{false};
  std::thread waiter;
  {
    auto held = db->session();
    waiter = std::thread([&] {
      auto s = db->session();
      acquired = true;
    });
    // A dedicated session is outside the pool: it does not wait.
    auto dedicated = db->dedicated_session();
    CHECK(dedicated->apps().list(ListParams{}).items.empty());
    std::this_thread::sleep_for(100ms);
    CHECK_FALSE(acquired.load());
  }
  waiter.join();
  CHECK(acquired.load());
}

// ---------------------------------------------------------------------------------------------
// copy_store: a SQLite source (what herald migrate-store reads) into the store under test

namespace {

constexpr int64_t kDayMs = 86'400'000;
// More than the pages of 250 that copy_store reads its lists in.
constexpr int kMoreThanAPage = 260;

// Everything a store holds, read back through its interfaces: apps oldest first, each with its
// endpoints (and their keys as stored) and messages (newest first, each with its deliveries
// and attempts).
struct StoreContents {
  std::vector<EventType> event_types;
  std::vector<Application> apps;
  std::vector<Endpoint> endpoints;
  std::map<std::string, std::vector<StoredKey>> keys;  // by endpoint id
  std::vector<TokenRecord> tokens;
  std::vector<Message> messages;
  std::vector<Delivery> deliveries;
  std::vector<Attempt> attempts;
};

StoreContents read_contents(Database& db) {
  auto s = db.session();
  StoreContents c;
  ListParams p;
  p.limit = 100;
  for (;;) {
    auto page = s->event_types().list(p, true);
    c.event_types.insert(c.event_types.end(), page.items.begin(), page.items.end());
    if (page.done || page.items.empty()) break;
    p.cursor = page.items.back().name;
  }
  c.apps = all_pages([&](const ListParams& q) { return s->apps().list(q); });
  for (const auto& app : c.apps) {
    for (const auto& ep :
         all_pages([&](const ListParams& q) { return s->endpoints().list(app.id, q); })) {
      c.keys[ep.id] = s->endpoints().stored_keys(ep.id);
      c.endpoints.push_back(ep);
    }
    for (const auto& m : all_pages(
             [&](const ListParams& q) { return s->messages().list(app.id, q, MessageFilter{}); })) {
      for (const auto& d : s->deliveries().for_message(m.id)) c.deliveries.push_back(d);
      for (const auto& a : all_pages([&](const ListParams& q) {
             return s->attempts().list_by_message(app.id, m.id, q, AttemptFilter{});
           })) {
        c.attempts.push_back(a);
      }
      c.messages.push_back(m);
    }
  }
  c.tokens = s->tokens().list();
  return c;
}

void check_same(const EventType& a, const EventType& b) {
  CAPTURE(a.name);
  CHECK(b.name == a.name);
  CHECK(b.description == a.description);
  CHECK(b.archived == a.archived);
  CHECK(b.deprecated == a.deprecated);
  CHECK(b.schemas_json == a.schemas_json);
  CHECK(b.group_name == a.group_name);
  CHECK(b.feature_flags == a.feature_flags);
  CHECK(b.created_at == a.created_at);
  CHECK(b.updated_at == a.updated_at);
}

// Not endpoints_version: a stamp of the store's own writes to the endpoints (caches compare it
// with itself), which the target counts from its own inserts.
void check_same(const Application& a, const Application& b) {
  CAPTURE(a.id);
  CHECK(b.id == a.id);
  CHECK(b.uid == a.uid);
  CHECK(b.name == a.name);
  CHECK(b.throttle_rate == a.throttle_rate);
  CHECK(b.metadata == a.metadata);
  CHECK(b.created_at == a.created_at);
  CHECK(b.updated_at == a.updated_at);
}

void check_same(const Endpoint& a, const Endpoint& b) {
  CAPTURE(a.id);
  CHECK(b.id == a.id);
  CHECK(b.app_id == a.app_id);
  CHECK(b.uid == a.uid);
  CHECK(b.url == a.url);
  CHECK(b.description == a.description);
  CHECK(b.throttle_rate == a.throttle_rate);
  CHECK(b.disabled == a.disabled);
  CHECK(b.disabled_reason == a.disabled_reason);
  CHECK(b.event_types == a.event_types);
  CHECK(b.channels == a.channels);
  CHECK(b.metadata == a.metadata);
  CHECK(b.headers == a.headers);
  CHECK(b.failing_since == a.failing_since);
  CHECK(b.created_at == a.created_at);
  CHECK(b.updated_at == a.updated_at);
}

void check_same(const StoredKey& a, const StoredKey& b) {
  CHECK(b.bytes == a.bytes);
  CHECK(b.sealed == a.sealed);
  CHECK(b.created_at == a.created_at);
  CHECK(b.expires_at == a.expires_at);
}

void check_same(const TokenRecord& a, const TokenRecord& b) {
  CAPTURE(a.id);
  CHECK(b.id == a.id);
  CHECK(b.hash == a.hash);
  CHECK(b.app_id == a.app_id);
  CHECK(b.name == a.name);
  CHECK(b.created_at == a.created_at);
  CHECK(b.expires_at == a.expires_at);
  CHECK(b.read_only == a.read_only);
  CHECK(b.session_id == a.session_id);
  CHECK(b.feature_flags == a.feature_flags);
}

void check_same(const Message& a, const Message& b) {
  CAPTURE(a.id);
  CHECK(b.id == a.id);
  CHECK(b.app_id == a.app_id);
  CHECK(b.event_id == a.event_id);
  CHECK(b.event_type == a.event_type);
  CHECK(b.payload == a.payload);
  CHECK(b.payload_expired == a.payload_expired);
  CHECK(b.channels == a.channels);
  CHECK(b.tags == a.tags);
  CHECK(b.timestamp == a.timestamp);
}

void check_same(const Delivery& a, const Delivery& b) {
  CAPTURE(a.id);
  CHECK(b.id == a.id);
  CHECK(b.app_id == a.app_id);
  CHECK(b.msg_id == a.msg_id);
  CHECK(b.endpoint_id == a.endpoint_id);
  CHECK(b.status == a.status);
  CHECK(b.attempts == a.attempts);
  CHECK(b.next_attempt_at == a.next_attempt_at);
  CHECK(b.trigger == a.trigger);
  CHECK(b.created_at == a.created_at);
  CHECK(b.updated_at == a.updated_at);
  CHECK(b.claim == a.claim);
}

void check_same(const Attempt& a, const Attempt& b) {
  CAPTURE(a.id);
  CHECK(b.id == a.id);
  CHECK(b.app_id == a.app_id);
  CHECK(b.msg_id == a.msg_id);
  CHECK(b.endpoint_id == a.endpoint_id);
  CHECK(b.delivery_id == a.delivery_id);
  CHECK(b.url == a.url);
  CHECK(b.response_status_code == a.response_status_code);
  CHECK(b.response == a.response);
  CHECK(b.response_duration_ms == a.response_duration_ms);
  CHECK(b.status == a.status);
  CHECK(b.trigger == a.trigger);
  CHECK(b.request_headers_json == a.request_headers_json);
  CHECK(b.timestamp == a.timestamp);
}

template <typename T>
void check_all_same(const std::vector<T>& a, const std::vector<T>& b) {
  REQUIRE(b.size() == a.size());
  for (size_t i = 0; i < a.size(); ++i) check_same(a[i], b[i]);
}

// Every row of `to` is the row of `from` with its id, field by field, and there are no others.
void check_same(const StoreContents& from, const StoreContents& to) {
  check_all_same(from.event_types, to.event_types);
  check_all_same(from.apps, to.apps);
  check_all_same(from.endpoints, to.endpoints);
  REQUIRE(to.keys.size() == from.keys.size());
  for (const auto& [endpoint_id, keys] : from.keys) {
    CAPTURE(endpoint_id);
    REQUIRE(to.keys.contains(endpoint_id));
    check_all_same(keys, to.keys.at(endpoint_id));
  }
  check_all_same(from.tokens, to.tokens);
  check_all_same(from.messages, to.messages);
  check_all_same(from.deliveries, to.deliveries);
  check_all_same(from.attempts, to.attempts);
}

// What seed_source() wrote, for the checks that name rows.
struct Seeded {
  Application app;    // the rich one: every kind of endpoint, message and delivery
  Application other;  // oldest-first after `app`
  Endpoint healthy;   // every optional field set
  Endpoint failing;   // failing_since set; its key rotated (two keys, the old one expiring)
  Endpoint disabled;  // disabled with a reason
  Endpoint legacy;    // its key in plaintext, from before sealing
  Endpoint other_ep;
  std::string healthy_key, failing_old_key, failing_new_key, legacy_key;
  Message expired;  // its payload dropped by retention
  Message queued;   // deliveries in every state of the queue
  Delivery due_later, resend, sending, parked;
  std::vector<Message> bulk;  // `app`'s first messages, oldest first
  Inventory expected;         // how many rows of each kind were written
};

// Writes a bit of everything herald keeps into `db`, at times around `now`: three event types
// (one archived, one with schemas), two apps, five endpoints, four tokens, `bulk` plain
// messages delivered once each and the special ones named in Seeded.
Seeded seed_source(Database& db, TimeMs now, int bulk) {
  Seeded x;
  Inventory& n = x.expected;
  auto s = db.begin();

  for (EventType et : {
           EventType{.name = "invoice.paid",
          .description = "An invoice was paid",
          .deprecated = true,
          // Raw text, spacing and key order as given.
                     .schemas_json = R"({"1": {"type":"object",  "required": ["amount"]}})",
          .group_name = "billing",
          .feature_flags = std::vector<std::string>{"beta"},
          .created_at = now - 20'000,
          .updated_at = now - 10'000},
           EventType{.name = "legacy.thing", .archived = true, .created_at = now - 30'000},
           EventType{.name = "user.created", .created_at = now, .updated_at = now},
       }) {
    s->event_types().insert(et);
    ++n.event_types;
  }

  x.app.id = new_id(kAppPrefix, now);
  x.app.uid = "acme";
  x.app.name = "Acme Corp";
  x.app.throttle_rate = 20;
  x.app.metadata = {{"tier", "gold"}, {"région", "eu-ouest"}};
  x.app.created_at = now - 50'000;
  x.app.updated_at = now - 40'000;
  s->apps().insert(x.app);
  x.other = add_app(*s, now, "Other");
  n.applications += 2;

  x.healthy = make_endpoint(x.app.id, now - 45'000, "main", "https://acme.example/hooks");
  x.healthy.description = "the main hook";
  x.healthy.throttle_rate = 5;
  x.healthy.event_types = std::vector<std::string>{"invoice.paid", "user.created"};
  x.healthy.channels = std::vector<std::string>{"eu"};
  x.healthy.metadata = {{"team", "billing"}};
  x.healthy.headers = {{"X-Acme", "1"}, {"X-Other", "two words"}};
  x.healthy.updated_at = now - 44'000;
  x.healthy_key = random_bytes(24);
  s->endpoints().insert(x.healthy, hmac_key(x.healthy_key));

  x.failing = make_endpoint(x.app.id, now, "failing");
  x.failing_old_key = random_bytes(24);
  x.failing_new_key = random_bytes(24);
  s->endpoints().insert(x.failing, hmac_key(x.failing_old_key));
  s->endpoints().rotate_key(x.failing.id, hmac_key(x.failing_new_key), kDayMs, now + 5);
  REQUIRE(s->endpoints().note_failure(x.failing.id, now - 60'000));

  x.disabled = make_endpoint(x.app.id, now, std::nullopt);
  s->endpoints().insert(x.disabled, hmac_key(random_bytes(24)));
  REQUIRE(s->endpoints().disable(x.disabled.id, "failing since 5 days", now + 6));

  x.legacy = make_endpoint(x.app.id, now, "legacy");
  x.legacy_key = "legacy\0key\xff"s;
  s->endpoints().import_endpoint(x.legacy, {StoredKey{x.legacy_key, false, now - 90'000, {}}});

  x.other_ep = make_endpoint(x.other.id, now, std::nullopt, "https://other.example/in");
  s->endpoints().insert(x.other_ep, hmac_key(random_bytes(24)));
  n.endpoints += 5;
  n.endpoint_keys += 6;

  const auto token = [&](std::optional<std::string> app_id, std::string name,
                         std::optional<TimeMs> expires_at, bool read_only) {
    s->tokens().insert(TokenRecord{new_id(kTokenPrefix, now), random_bytes(32), std::move(app_id),
                                   std::move(name), now - 3000, expires_at, read_only,
                                   std::nullopt});
    ++n.tokens;
  };
  token(std::nullopt, "admin", std::nullopt, false);
  token(x.app.id, "acme portal", now + kDayMs, true);
  s->tokens().insert(TokenRecord{new_id(kTokenPrefix, now),
                                 random_bytes(32),
                                 x.app.id,
                                 "acme beta portal",
                                 now - 3000,
                                 now + kDayMs,
                                 false,
                                 "alice",
                                 {"beta"}});
  ++n.tokens;
  token(x.other.id, "other integration", std::nullopt, false);

  const auto write = [&](const Message& m) {
    s->messages().insert(m);
    ++n.messages;
  };
  const auto deliver = [&](const Message& m, const Endpoint& ep, DeliveryStatus status,
                           int attempts, TimeMs due,
                           TriggerType trigger = TriggerType::kScheduled) {
    Delivery d;
    d.id = new_id(kDeliveryPrefix, now);
    d.app_id = m.app_id;
    d.msg_id = m.id;
    d.endpoint_id = ep.id;
    d.status = status;
    d.attempts = attempts;
    d.next_attempt_at = due;
    d.trigger = trigger;
    d.created_at = m.timestamp;
    d.updated_at = m.timestamp + 1 + attempts;
    s->deliveries().insert(d);
    ++n.deliveries;
    return d;
  };
  const auto attempt = [&](const Delivery& d, DeliveryStatus status, int code,
                           const std::function<void(Attempt&)>& edit = {}) {
    Attempt a = make_attempt(d, now, status, code);
    if (edit) edit(a);
    s->attempts().insert({a});
    ++n.attempts;
    return a;
  };

  for (int i = 0; i < bulk; ++i) {
    Message m = make_message(x.app.id, now - 100'000 + i, "invoice.paid");
    m.payload = R"({"n":)" + std::to_string(i) + "}";
    write(m);
    attempt(deliver(m, x.healthy, DeliveryStatus::kSuccess, 1, 0), DeliveryStatus::kSuccess, 200);
    x.bulk.push_back(m);
  }

  Message with_event_id =
      make_message(x.app.id, now, "invoice.paid", "evt-1", std::vector<std::string>{"eu", "us"});
  with_event_id.tags = std::vector<std::string>{"vip", "q3"};
  with_event_id.payload = R"({"amount": 4200,"note":"café \u00e9",  "list":[1, 2 ,3]})";
  write(with_event_id);
  const auto done = deliver(with_event_id, x.healthy, DeliveryStatus::kSuccess, 2, 0);
  attempt(done, DeliveryStatus::kFail, 503, [](Attempt& a) { a.response = "busy"; });
  attempt(done, DeliveryStatus::kSuccess, 200);

  x.expired = make_message(x.app.id, now, "invoice.paid");
  x.expired.payload.clear();
  x.expired.payload_expired = true;
  write(x.expired);
  attempt(deliver(x.expired, x.healthy, DeliveryStatus::kSuccess, 1, 0), DeliveryStatus::kSuccess,
          204);

  x.queued = make_message(x.app.id, now, "user.created");
  write(x.queued);
  x.due_later = deliver(x.queued, x.healthy, DeliveryStatus::kPending, 2, now + 60'000);
  attempt(x.due_later, DeliveryStatus::kFail, 500);
  attempt(x.due_later, DeliveryStatus::kFail, 0, [](Attempt& a) {
    a.response = "timed out after 2s";
    a.response_duration_ms = 2000;
  });
  x.resend = deliver(x.queued, x.healthy, DeliveryStatus::kPending, 0, now, TriggerType::kManual);
  x.sending = deliver(x.queued, x.failing, DeliveryStatus::kSending, 1, now + 30'000);
  attempt(x.sending, DeliveryStatus::kFail, 502);
  x.parked = deliver(x.queued, x.legacy, DeliveryStatus::kPending, 0, 0);
  const auto failed = deliver(x.queued, x.disabled, DeliveryStatus::kFail, 4, 0);
  attempt(failed, DeliveryStatus::kFail, 410, [&](Attempt& a) {
    a.trigger = TriggerType::kManual;
    a.url = "https://acme.example/gone";
    a.request_headers_json =
        R"({"webhook-id":")" + x.queued.id + R"(","webhook-timestamp":"1700000000","x-acme":"1"})";
  });

  // The same event id in another application is another message.
  const Message elsewhere = make_message(x.other.id, now, "user.created", "evt-1");
  write(elsewhere);
  attempt(deliver(elsewhere, x.other_ep, DeliveryStatus::kSuccess, 1, 0, TriggerType::kManual),
          DeliveryStatus::kSuccess, 200, [](Attempt& a) { a.trigger = TriggerType::kManual; });

  s->commit();
  return x;
}

// A master key for a source and its target (migrate-store opens the target with the source's).
std::shared_ptr<const SecretBox> new_box() {
  return std::make_shared<const SecretBox>(random_bytes(SecretBox::kKeySize));
}

void no_progress(const std::string&) {}

}  // namespace

TEST_CASE("copy_store copies every kind of row from SQLite into the store under test as it lies") {
  TestStore store;
  const auto box = new_box();
  auto src = open_sqlite(store.dir().file("source.db"), 2, box);
  const TimeMs now = wall_now();
  const Seeded x = seed_source(*src, now, 3);
  auto dst = store.open(2, box);

  std::vector<std::string> progress;
  const CopyResult r =
      copy_store(*src, *dst, [&](const std::string& line) { progress.push_back(line); });
  CHECK(r.verified());
  CHECK(r.source == x.expected);  // the counts are of what was written, not of what was read
  CHECK(r.target == x.expected);
  CHECK(r.messages_copied == x.expected.messages);
  CHECK(r.messages_present == 0);
  CHECK_FALSE(progress.empty());

  const StoreContents from = read_contents(*src);
  const StoreContents to = read_contents(*dst);
  REQUIRE(static_cast<int64_t>(from.messages.size()) == x.expected.messages);
  REQUIRE(static_cast<int64_t>(from.attempts.size()) == x.expected.attempts);
  check_same(from, to);

  // What each special row is for, asserted on the target itself.
  auto s = dst->session();
  const auto expired = s->messages().get(x.app.id, x.expired.id);
  REQUIRE(expired);
  CHECK(expired->payload_expired);
  CHECK(expired->payload.empty());
  CHECK(s->messages().payloads({x.expired.id}) ==
        std::map<std::string, std::string>{{x.expired.id, ""}});
  CHECK(s->messages().get(x.app.id, "evt-1")->tags == std::vector<std::string>{"vip", "q3"});
  CHECK(s->messages().get(x.other.id, "evt-1")->app_id == x.other.id);

  const auto disabled = s->endpoints().get(x.app.id, x.disabled.id);
  REQUIRE(disabled);
  CHECK(disabled->disabled);
  CHECK(disabled->disabled_reason == std::optional<std::string>("failing since 5 days"));
  CHECK(s->endpoints().get(x.app.id, "failing")->failing_since ==
        std::optional<TimeMs>(now - 60'000));
  CHECK(s->endpoints().enabled_for_app(x.app.id).size() == 3);

  // Keys lie as they did (sealed ones sealed, the plaintext one not), and open with the same
  // master key: the target signs with what the source signed with.
  const auto failing_keys = s->endpoints().stored_keys(x.failing.id);
  REQUIRE(failing_keys.size() == 2);
  CHECK(failing_keys[0].sealed);
  CHECK(failing_keys[0].expires_at == std::optional<TimeMs>(now + 5 + kDayMs));
  CHECK(failing_keys[1].sealed);
  CHECK_FALSE(failing_keys[1].expires_at);
  CHECK(failing_keys[1].bytes.find(x.failing_new_key) == std::string::npos);
  const auto legacy_keys = s->endpoints().stored_keys(x.legacy.id);
  REQUIRE(legacy_keys.size() == 1);
  CHECK_FALSE(legacy_keys[0].sealed);
  CHECK(legacy_keys[0].bytes == x.legacy_key);
  CHECK(s->endpoints().sealed_keys_open());
  CHECK(s->endpoints().current_key(x.healthy.id) == opt_hmac_key(x.healthy_key));
  CHECK(s->endpoints().current_key(x.legacy.id) == opt_hmac_key(x.legacy_key));
  CHECK(s->endpoints().signing_keys(x.failing.id, now + 10) ==
        hmac_keys({x.failing_new_key, x.failing_old_key}));

  // The queue goes on where it stood: the parked delivery is parked, the rest are due when
  // they were (the sending one when its lease lapses), and nothing finished is due again.
  CHECK(s->queue().parked_endpoints() == std::vector<std::string>{x.legacy.id});
  CHECK(s->queue().next_due() == std::optional<TimeMs>(now));
  CHECK(id_set(claim_due(*s, now, kDayMs, 100)) == std::set<std::string>{x.resend.id});
  CHECK(id_set(claim_due(*s, now + 60'000, 1000, 100)) ==
        std::set<std::string>{x.sending.id, x.due_later.id});
  s->begin();
  CHECK(id_set(s->queue().claim_parked(x.legacy.id, now, 1000, 10)) ==
        std::set<std::string>{x.parked.id});
  s->commit();
}

TEST_CASE("copy_store reads every page of each list it copies") {
  TestStore store;
  const auto box = new_box();
  auto src = open_sqlite(store.dir().file("source.db"), 2, box);
  const TimeMs now = wall_now();
  Inventory expected;
  {
    auto s = src->begin();
    for (int i = 0; i < kMoreThanAPage; ++i) {
      s->event_types().insert(EventType{.name = "page." + std::to_string(1000 + i),
                                        .archived = i % 2 == 0,
                                        .created_at = now,
                                        .updated_at = now});
    }
    std::vector<Application> apps;
    for (int i = 0; i < kMoreThanAPage; ++i) apps.push_back(add_app(*s, now, "app"));
    for (int i = 0; i < kMoreThanAPage; ++i) {
      add_endpoint(*s, apps[0].id, kUrl, "key-" + std::to_string(i), now);
    }
    const auto ep = s->endpoints().list(apps[0].id, ListParams{}).items.front();
    Message last;
    for (int i = 0; i < kMoreThanAPage; ++i) {
      last = add_message(*s, apps[0].id, "{}", now, "page.1001");
    }
    const auto d = add_delivery(*s, last, ep.id, now, DeliveryStatus::kFail);
    std::vector<Attempt> attempts;
    for (int i = 0; i < kMoreThanAPage; ++i) {
      attempts.push_back(make_attempt(d, now, DeliveryStatus::kFail, 500));
    }
    s->attempts().insert(attempts);
    s->commit();
    expected = Inventory{
        kMoreThanAPage, kMoreThanAPage, kMoreThanAPage, kMoreThanAPage, 0, kMoreThanAPage, 1,
        kMoreThanAPage};
  }
  auto dst = store.open(2, box);

  const CopyResult r = copy_store(*src, *dst, no_progress);
  CHECK(r.source == expected);
  CHECK(r.target == expected);
  CHECK(r.verified());
  CHECK(r.messages_copied == kMoreThanAPage);
  check_same(read_contents(*src), read_contents(*dst));
}

TEST_CASE("copy_store run again copies nothing and still verifies; it copies what is new since") {
  TestStore store;
  const auto box = new_box();
  auto src = open_sqlite(store.dir().file("source.db"), 2, box);
  const TimeMs now = wall_now();
  const Seeded x = seed_source(*src, now, 20);
  auto dst = store.open(2, box);

  const CopyResult first = copy_store(*src, *dst, no_progress);
  REQUIRE(first.verified());
  const StoreContents copied = read_contents(*dst);

  const CopyResult again = copy_store(*src, *dst, no_progress);
  CHECK(again.verified());
  CHECK(again.messages_copied == 0);
  CHECK(again.messages_present == x.expected.messages);
  CHECK(again.target == first.target);
  check_same(copied, read_contents(*dst));

  // The source gains a row of every kind, some under rows the target holds already (an
  // endpoint of a copied app, a message among copied ones): only those are copied.
  Inventory more = x.expected;
  {
    auto s = src->begin();
    s->event_types().insert(EventType{.name = "late.type", .created_at = now, .updated_at = now});
    const auto late_ep = add_endpoint(*s, x.app.id, kUrl, "late key", now + 1);
    const auto late_app = add_app(*s, now + 1, "late app", "late");
    add_endpoint(*s, late_app.id, kUrl, "late app key", now + 1);
    s->tokens().insert(TokenRecord{new_id(kTokenPrefix, now + 1), random_bytes(32), late_app.id,
                                   "late", now + 1, std::nullopt, false, std::nullopt});
    const auto m = add_message(*s, x.app.id, R"({"late":true})", now + 1);
    const auto d = add_delivery(*s, m, late_ep.id, now + 1, DeliveryStatus::kFail);
    s->attempts().insert({make_attempt(d, now + 1, DeliveryStatus::kFail, 500)});
    add_message(*s, late_app.id, "{}", now + 1);
    s->commit();
    more.event_types += 1;
    more.applications += 1;
    more.endpoints += 2;
    more.endpoint_keys += 2;
    more.tokens += 1;
    more.messages += 2;
    more.deliveries += 1;
    more.attempts += 1;
  }
  const CopyResult grown = copy_store(*src, *dst, no_progress);
  CHECK(grown.verified());
  CHECK(grown.source == more);
  CHECK(grown.messages_copied == 2);
  CHECK(grown.messages_present == x.expected.messages);
  check_same(read_contents(*src), read_contents(*dst));
}

TEST_CASE("copy_store stopped half-way is finished by running it again") {
  TestStore store;
  const auto box = new_box();
  auto src = open_sqlite(store.dir().file("source.db"), 2, box);
  const TimeMs now = wall_now();
  const Seeded x = seed_source(*src, now, kMoreThanAPage);
  auto dst = store.open(2, box);

  // The copy goes app by app, newest message first, one transaction per message. It is made
  // to fail at the attempts of a message of the first page (after its row and its delivery
  // went in), standing for anything that stops a copy there: the target holds an attempt with
  // that id, under an application of its own.
  const Message& stop_at = x.bulk[100];
  std::string stop_attempt_id;
  {
    auto s = src->session();
    const auto page = s->attempts().list_by_message(x.app.id, stop_at.id, ListParams{}, {});
    REQUIRE(page.items.size() == 1);
    stop_attempt_id = page.items[0].id;
  }
  Application blocker;
  {
    auto s = dst->session();
    blocker = add_app(*s, now, "blocker");
    const auto ep = add_endpoint(*s, blocker.id, kUrl, "blocker key", now);
    const auto m = add_message(*s, blocker.id, "{}", now);
    Attempt a = make_attempt(add_delivery(*s, m, ep.id, now, DeliveryStatus::kFail), now,
                             DeliveryStatus::kFail, 500);
    a.id = stop_attempt_id;
    s->attempts().insert({a});
  }
  bool constraint = false;
  try {
    copy_store(*src, *dst, no_progress);
  } catch (const DbError& e) {
    constraint = e.is_constraint();
  }
  REQUIRE(constraint);

  // It stopped there: the newer messages are in; that one is not, not even in part; the older
  // ones and the other app's are not either.
  std::vector<Message> newer;
  {
    auto s = src->session();
    for (const auto& m : all_pages([&](const ListParams& p) {
           return s->messages().list(x.app.id, p, MessageFilter{});
         })) {
      if (m.id > stop_at.id) newer.push_back(m);
    }
  }
  {
    auto s = dst->session();
    CHECK(ids_of(all_pages([&](const ListParams& p) {
            return s->messages().list(x.app.id, p, MessageFilter{});
          })) == ids_of(newer));
    CHECK_FALSE(s->messages().get(x.app.id, stop_at.id));
    CHECK(s->deliveries().for_message(stop_at.id).empty());
    CHECK(s->messages().list(x.other.id, ListParams{}, MessageFilter{}).items.empty());
    CHECK(s->apps().get(x.other.id));  // applications and endpoints went first
    CHECK(s->tokens().list().size() == static_cast<size_t>(x.expected.tokens));
    CHECK(s->apps().remove(blocker.id));
  }

  const CopyResult r = copy_store(*src, *dst, no_progress);
  CHECK(r.verified());
  CHECK(r.target == x.expected);
  CHECK(r.messages_present == static_cast<int64_t>(newer.size()));
  CHECK(r.messages_copied == x.expected.messages - static_cast<int64_t>(newer.size()));
  check_same(read_contents(*src), read_contents(*dst));
}

TEST_CASE("copy_store into a target that holds data of its own does not verify") {
  TestStore store;
  const auto box = new_box();
  auto src = open_sqlite(store.dir().file("source.db"), 2, box);
  const TimeMs now = wall_now();
  const Seeded x = seed_source(*src, now, 2);
  auto dst = store.open(2, box);

  SUBCASE("rows the source does not have: copied alongside, and the counts tell") {
    {
      auto s = dst->session();
      const auto theirs = add_app(*s, now, "theirs", "theirs");
      add_message(*s, theirs.id, "{}", now);
      s->tokens().insert(TokenRecord{new_id(kTokenPrefix, now), random_bytes(32), std::nullopt,
                                     "HERALD_ADMIN_TOKEN", now, std::nullopt, false, std::nullopt});
    }
    const CopyResult r = copy_store(*src, *dst, no_progress);
    CHECK_FALSE(r.verified());
    CHECK(r.source == x.expected);
    Inventory with_theirs = x.expected;
    with_theirs.applications += 1;
    with_theirs.messages += 1;
    with_theirs.tokens += 1;
    CHECK(r.target == with_theirs);
    CHECK(r.messages_copied == x.expected.messages);
  }

  SUBCASE("only an event type of its own") {
    dst->session()->event_types().insert(
        EventType{.name = "theirs.only", .created_at = now, .updated_at = now});
    const CopyResult r = copy_store(*src, *dst, no_progress);
    CHECK_FALSE(r.verified());
    CHECK(r.target.event_types == x.expected.event_types + 1);
  }

  SUBCASE("an application under the uid of a source one: the copy fails rather than merge") {
    add_app(*dst->session(), now, "impostor", "acme");
    CHECK(throws_constraint([&] { copy_store(*src, *dst, no_progress); }));
    auto s = dst->session();
    CHECK(s->apps().get_by_uid("acme")->name == "impostor");
    CHECK(s->inventory().messages == 0);
  }
}

// ---------------------------------------------------------------------------------------------
// The SQLite backend itself: its file, PRAGMAs, migrations, and the queue's hand-over

TEST_SUITE("sqlite") {
  TEST_CASE("migrations apply once, keep the data, and are idempotent") {
    TempDir dir;
    const std::string path = dir.file("herald.db");
    {
      auto db = open_sqlite(path, 2);
      sqlite::Connection c(path);
      CHECK(scalar(c, "SELECT max(version) FROM schema_version") ==
            sqlite::latest_schema_version());
      CHECK(scalar(c, "SELECT count(*) FROM schema_version") == sqlite::latest_schema_version());
      for (const char* table :
           {"applications", "endpoints", "endpoint_secrets", "event_types", "messages",
            "deliveries", "attempts", "api_tokens", "idempotency_keys", "master_key_check"}) {
        CAPTURE(table);
        CHECK(scalar(c, std::string("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                    "name = '") +
                            table + "'") == 1);
      }
      add_app(*db->session(), wall_now(), "app", "kept");
    }
    // Opening again applies nothing twice and keeps the data.
    auto db = open_sqlite(path, 2);
    sqlite::Connection c(path);
    CHECK(scalar(c, "SELECT max(version) FROM schema_version") == sqlite::latest_schema_version());
    CHECK(scalar(c, "SELECT count(*) FROM schema_version") == sqlite::latest_schema_version());
    CHECK(db->session()->apps().get_by_uid("kept").has_value());
    // migrate() on an up-to-date connection is a no-op too.
    sqlite::migrate(c);
    CHECK(scalar(c, "SELECT count(*) FROM schema_version") == sqlite::latest_schema_version());
    CHECK(db->describe() == path);
    CHECK_FALSE(db->shared());
    CHECK(db->session()->shared_limits() == nullptr);
  }

  TEST_CASE("an exclusive hold refuses a second holder, naming its pid, and ends with it") {
    TempDir dir;
    const std::string path = dir.file("herald.db");
    auto open_held = [](const std::string& p) {
      return open_database(p, DatabaseOptions{1, nullptr, /*exclusive=*/true});
    };
    {
      auto held = open_held(path);
      for (const std::string& spelling : {path, dir.file("./herald.db")}) {
        CAPTURE(spelling);
        try {
          open_held(spelling);
          FAIL("a second exclusive open succeeded");
        } catch (const sqlite::DatabaseInUse& e) {
          CHECK(e.pid() == static_cast<long>(::getpid()));
          CHECK(std::string(e.what()).find("(pid " + std::to_string(::getpid()) + ")") !=
                std::string::npos);
        }
      }
      // Tools that do not hold the file (herald token, master-key rotate) still open it.
      CHECK(open_sqlite(path)->session()->apps().list(ListParams{}).items.empty());
    }
    // Closed, the hold is gone; the lock file stays, naming the last holder.
    CHECK(fs::exists(path + ".lock"));
    auto again = open_held(path);
    CHECK(again->describe() == path);
  }

  TEST_CASE("held exclusively, deliveries a dead process had claimed are due at once") {
    TempDir dir;
    const std::string path = dir.file("herald.db");
    const TimeMs t0 = wall_now() - 1000;
    std::string claimed_id;
    std::string pending_id;
    {
      auto db = open_sqlite(path);
      auto s = db->session();
      const auto app = add_app(*s, t0);
      const auto ep = add_endpoint(*s, app.id, kUrl, "k", t0);
      const auto m = add_message(*s, app.id, R"({"n":1})", t0, "a.b");
      claimed_id = add_delivery(*s, m, ep.id, t0).id;
      const auto later = add_message(*s, app.id, R"({"n":2})", t0, "a.b");
      // A retry an hour away: not in flight, left alone.
      pending_id = add_delivery(*s, later, ep.id, t0, DeliveryStatus::kPending, t0 + 3'600'000).id;
      auto claimed = claim_due(*s, t0, /*lease_ms=*/600'000);
      REQUIRE(claimed.size() == 1);
      REQUIRE(claimed[0].id == claimed_id);
      CHECK(s->deliveries().get(claimed_id)->status == DeliveryStatus::kSending);
    }
    // Not held (a tool): the lease stands.
    CHECK(open_sqlite(path)->session()->deliveries().get(claimed_id)->status ==
          DeliveryStatus::kSending);

    auto db = open_database(path, DatabaseOptions{1, nullptr, /*exclusive=*/true});
    auto s = db->session();
    const auto d = s->deliveries().get(claimed_id);
    CHECK(d->status == DeliveryStatus::kPending);
    CHECK(d->attempts == 0);  // the try that was cut short is not counted
    CHECK(d->next_attempt_at <= wall_now());
    CHECK(s->deliveries().get(pending_id)->next_attempt_at == t0 + 3'600'000);
    const auto due = claim_due(*s, wall_now(), 60'000);
    REQUIRE(due.size() == 1);
    CHECK(due[0].id == claimed_id);
  }

  TEST_CASE("every connection is in WAL mode with foreign keys on and synchronous FULL") {
    TempDir dir;
    const std::string path = dir.file("herald.db");
    auto db = open_sqlite(path, 3);
    auto* sqlite_db = dynamic_cast<sqlite::SqliteDatabase*>(db.get());
    REQUIRE(sqlite_db != nullptr);
    auto a = sqlite_db->open_connection();
    auto b = sqlite_db->open_connection();
    for (sqlite::Connection* c : {a.get(), b.get()}) {
      auto st = c->prepare("PRAGMA journal_mode");
      REQUIRE(st.step());
      CHECK(st.get_text(0) == "wal");
      CHECK(scalar(*c, "PRAGMA foreign_keys") == 1);
      CHECK(scalar(*c, "PRAGMA synchronous") == 2);  // FULL
    }
    // The pooled sessions, held at once so that each is a connection of its own, enforce the
    // foreign keys (the cascades of AppStore::remove rest on them).
    const TimeMs now = wall_now();
    auto s1 = db->session();
    auto s2 = db->session();
    for (Session* s : {s1.get(), s2.get()}) {
      CHECK(throws_constraint([&] { add_message(*s, new_id(kAppPrefix, now), "{}", now); }));
    }
    add_app(*s1, now);
    CHECK(fs::exists(path + "-wal"));
  }

  TEST_CASE("sqlite_memory_bytes bounds the page caches of every connection together") {
    TempDir dir;
    const std::string path = dir.file("herald.db");
    // A 16 MiB file: more than the bound, less than one connection's own cache_size.
    std::vector<std::string> ids;
    std::string app_id;
    {
      auto db = open_sqlite(path, 1);
      auto s = db->begin();
      const TimeMs now = wall_now();
      app_id = add_app(*s, now).id;
      const std::string payload = "{\"pad\":\"" + std::string(8000, 'x') + "\"}";
      for (int i = 0; i < 2000; ++i) ids.push_back(add_message(*s, app_id, payload, now).id);
      s->commit();
    }
    // Four connections at once, each reading the whole file; the highest SQLite's heap reaches.
    const auto peak = [&](uint64_t bound) {
      auto db = open_database(path, DatabaseOptions{4, nullptr, false, 0, bound});
      std::vector<std::unique_ptr<Session>> sessions;
      for (int i = 0; i < 4; ++i) sessions.push_back(db->session());
      int64_t highest = 0;
      for (auto& s : sessions) {
        for (const auto& id : ids) REQUIRE(s->messages().get(app_id, id).has_value());
        highest = std::max(highest, db->memory_used().value());
      }
      return highest;
    };
    constexpr int64_t kBound = 4 << 20;
    // Unbounded, each connection caches the file over again.
    CHECK(peak(0) > 6 * kBound);
    // Bounded, the caches reuse their pages: a soft limit, so a little over it at most.
    CHECK(peak(kBound) < kBound + (kBound / 2));
  }

  TEST_CASE("migration 2 adds endpoints.failing_since to a fresh database") {
    TempDir dir;
    const std::string path = dir.file("herald.db");
    auto db = open_sqlite(path);
    sqlite::Connection c(path);
    CHECK(sqlite::latest_schema_version() >= 2);
    CHECK(scalar(c, "SELECT max(version) FROM schema_version") == sqlite::latest_schema_version());
    CHECK(scalar(c, "SELECT count(*) FROM schema_version WHERE version = 2") == 1);
    CHECK(has_column(c, "endpoints", "failing_since"));
    CHECK_FALSE(has_column(c, "endpoints", "no_such_column"));  // the helper can say no

    // A new endpoint is not failing.
    auto s = db->session();
    const TimeMs now = wall_now();
    const auto app = add_app(*s, now);
    const auto ep = add_endpoint(*s, app.id, kUrl, "k", now);
    auto got = s->endpoints().get(app.id, ep.id);
    REQUIRE(got);
    CHECK_FALSE(got->failing_since.has_value());
    CHECK(scalar(c, "SELECT count(*) FROM endpoints WHERE failing_since IS NULL") == 1);
  }

  TEST_CASE("migration 2 upgrades a version 1 database and keeps its data") {
    TempDir dir;
    const std::string path = dir.file("v1.db");
    const TimeMs now = wall_now();
    const std::string app_id = new_id(kAppPrefix, now);
    const auto ep = make_endpoint(app_id, now, "kept-ep");
    const auto m = make_message(app_id, now, "a.b");
    {
      // A database at version 1, made by migration 1's own SQL: a trigger stops migrate()
      // when it records version 2, which rolls migration 2 back.
      sqlite::Connection c(path);
      c.exec(
          "CREATE TABLE schema_version (version INTEGER NOT NULL);"
          "CREATE TRIGGER stop_after_v1 BEFORE INSERT ON schema_version WHEN NEW.version > 1 "
          "BEGIN SELECT RAISE(ABORT, 'stop after version 1'); END;");
      CHECK_THROWS_AS(sqlite::migrate(c), DbError);
      c.exec("DROP TRIGGER stop_after_v1");
      REQUIRE(scalar(c, "SELECT max(version) FROM schema_version") == 1);
      REQUIRE(scalar(c, "SELECT count(*) FROM schema_version") == 1);
      REQUIRE(scalar(c, "SELECT count(*) FROM sqlite_master WHERE name = 'endpoints'") == 1);
      REQUIRE_FALSE(has_column(c, "endpoints", "failing_since"));
      // Data written at version 1, through the v1 columns only.
      c.prepare(
           "INSERT INTO applications (id, uid, name, created_at, updated_at) "
           "VALUES (?, 'kept-app', 'v1', ?, ?)")
          .bind(1, app_id)
          .bind(2, now)
          .bind(3, now)
          .run();
      c.prepare(
           "INSERT INTO endpoints (id, app_id, uid, url, disabled, disabled_reason, "
           "created_at, updated_at) VALUES (?, ?, 'kept-ep', ?, 1, 'by hand', ?, ?)")
          .bind(1, ep.id)
          .bind(2, app_id)
          .bind(3, ep.url)
          .bind(4, now)
          .bind(5, now)
          .run();
      c.prepare("INSERT INTO endpoint_secrets (endpoint_id, key, created_at) VALUES (?, ?, ?)")
          .bind(1, ep.id)
          .bind_blob(2, "key-v1")
          .bind(3, now)
          .run();
      c.prepare(
           "INSERT INTO messages (id, app_id, event_type, payload, created_at) "
           "VALUES (?, ?, ?, ?, ?)")
          .bind(1, m.id)
          .bind(2, app_id)
          .bind(3, m.event_type)
          .bind(4, m.payload)
          .bind(5, now)
          .run();
    }
    auto db = open_sqlite(path, 2);
    sqlite::Connection c(path);
    CHECK(scalar(c, "SELECT max(version) FROM schema_version") == sqlite::latest_schema_version());
    CHECK(scalar(c, "SELECT count(*) FROM schema_version") == sqlite::latest_schema_version());
    CHECK(has_column(c, "endpoints", "failing_since"));

    auto s = db->session();
    CHECK(s->apps().get_by_uid("kept-app").has_value());
    EndpointStore& endpoints = s->endpoints();
    auto got = endpoints.get(app_id, "kept-ep");
    REQUIRE(got);
    CHECK(got->id == ep.id);
    CHECK(got->disabled);
    CHECK(got->disabled_reason == std::optional<std::string>("by hand"));
    CHECK_FALSE(got->failing_since.has_value());
    CHECK(endpoints.current_key(ep.id) == opt_hmac_key("key-v1"));
    auto msg = s->messages().get(app_id, m.id);
    REQUIRE(msg);
    CHECK(msg->payload == m.payload);
    CHECK_FALSE(msg->payload_expired);

    // The new column works on the upgraded rows.
    CHECK(endpoints.note_failure(ep.id, now + 5) == std::optional<TimeMs>(now + 5));
    CHECK(endpoints.get(app_id, ep.id)->failing_since == std::optional<TimeMs>(now + 5));
  }

  TEST_CASE("enqueue hands the deliveries it has room for over as sending, once committed") {
    TempDir dir;
    auto db = open_sqlite(dir.file("herald.db"));
    ManualClock clock(wall_now());
    const TimeMs now = clock.now_ms();
    const auto f = add_fanout(*db, now, 3);
    Enqueuer enqueuer(clock);
    const auto m = make_message(f.app.id, now, "a.b");
    int room = 0;
    SUBCASE("room for all") {
      room = 10;
    }
    SUBCASE("room for some") {
      room = 1;
    }
    const size_t sending = static_cast<size_t>(std::min(room, 3));
    FakeListener listener(room);
    std::optional<bool> committed_at_hand_over;
    listener.on_hand_over = [&](const std::vector<Delivery>& ds) {
      // Another connection sees only what is committed.
      committed_at_hand_over = db->session()->deliveries().get(ds.at(0).id).has_value();
    };
    Listening listening(*db, listener);

    auto s = db->begin();
    CHECK(enqueuer.publish(*s, m) == 3);
    // Written claimed inside the transaction, as many as there was room for; not handed over.
    std::set<std::string> claimed, waiting;
    for (const auto& d : s->deliveries().for_message(m.id)) {
      CAPTURE(d.id);
      if (d.status == DeliveryStatus::kSending) {
        claimed.insert(d.id);
        CHECK(d.next_attempt_at == now + FakeListener::kLeaseMs);
      } else {
        waiting.insert(d.id);
        CHECK(d.status == DeliveryStatus::kPending);
        CHECK(d.next_attempt_at == now);
      }
    }
    CHECK(claimed.size() == sending);
    CHECK(waiting.size() == 3 - sending);
    auto c = listener.calls();
    CHECK(c.asked == 3);
    CHECK(c.reserved == static_cast<int>(sending));
    CHECK(c.handed.empty());

    s->commit();
    c = listener.calls();
    REQUIRE(c.handed.size() == 1);
    CHECK(committed_at_hand_over == std::optional<bool>(true));
    const auto& h = c.handed[0];
    CHECK(id_set(h.deliveries) == claimed);
    for (const auto& d : h.deliveries) {
      CHECK(d.status == DeliveryStatus::kSending);
      CHECK(d.next_attempt_at == now + FakeListener::kLeaseMs);
      CHECK(d.msg_id == m.id);
      CHECK(d.app_id == f.app.id);
      CHECK(d.attempts == 0);
      CHECK(d.trigger == TriggerType::kScheduled);
    }
    REQUIRE(h.payload != nullptr);
    CHECK(*h.payload == m.payload);
    CHECK(c.released == 0);  // once committed the room is the listener's

    // What was handed over is not claimed again before its lease lapses; the rest is due now.
    CHECK(id_set(claim_due(*s, now, 2 * FakeListener::kLeaseMs)) == waiting);
    CHECK(id_set(claim_due(*s, now + FakeListener::kLeaseMs, 1000)) == claimed);
  }

  TEST_CASE("enqueue: a rolled-back transaction releases exactly its room and hands nothing over") {
    TempDir dir;
    auto db = open_sqlite(dir.file("herald.db"));
    ManualClock clock(wall_now());
    const TimeMs now = clock.now_ms();
    const auto f = add_fanout(*db, now, 3);
    Enqueuer enqueuer(clock);
    const auto m = make_message(f.app.id, now, "a.b");
    FakeListener listener(2);
    Listening listening(*db, listener);

    SUBCASE("rollback()") {
      auto s = db->begin();
      CHECK(enqueuer.publish(*s, m) == 3);
      CHECK(listener.calls().reserved == 2);
      CHECK(listener.calls().released == 0);
      s->rollback();
    }
    SUBCASE("the session destroyed with its transaction open") {
      auto s = db->begin();
      CHECK(enqueuer.publish(*s, m) == 3);
    }
    SUBCASE("a rolled-back savepoint") {
      auto s = db->begin();
      s->savepoint();
      CHECK(enqueuer.publish(*s, m) == 3);
      s->rollback_to_savepoint();
      CHECK(listener.calls().released == 2);
      s->commit();
    }
    auto c = listener.calls();
    CHECK(c.reserved == 2);
    CHECK(c.released == 2);
    CHECK(c.releases == 1);
    CHECK(c.handed.empty());
    CHECK(c.wakes == 0);
    auto s = db->session();
    CHECK_FALSE(s->messages().get(f.app.id, m.id).has_value());
    CHECK(s->deliveries().for_message(m.id).empty());

    // The room is back: the next message gets it.
    const auto next = make_message(f.app.id, now, "a.b");
    s->begin();
    enqueuer.publish(*s, next);
    s->commit();
    c = listener.calls();
    CHECK(c.reserved == 4);
    REQUIRE(c.handed.size() == 1);
    CHECK(c.handed[0].deliveries.size() == 2);
    CHECK(c.handed[0].deliveries[0].msg_id == next.id);
  }

  TEST_CASE("enqueue in a write batcher work that throws releases its room; the batch commits") {
    TempDir dir;
    auto db = open_sqlite(dir.file("herald.db"));
    ManualClock clock(wall_now());
    const TimeMs now = clock.now_ms();
    const auto f = add_fanout(*db, now, 3);
    Enqueuer enqueuer(clock);
    FakeListener listener(5);
    Listening listening(*db, listener);
    WriteBatcher batcher(*db);
    const auto failed = make_message(f.app.id, now, "a.b");
    const auto ok = make_message(f.app.id, now, "a.b");

    const uint64_t commits = batcher.commits();
    size_t published = 0;  // checked here, not on the batcher's thread
    CHECK_THROWS_WITH_AS(batcher.run([&](Session& w) {
      published = enqueuer.publish(w, failed);
      throw std::runtime_error("after enqueue");
    }),
                         "after enqueue", std::runtime_error);
    CHECK(published == 3);
    auto c = listener.calls();
    CHECK(c.reserved == 3);
    CHECK(c.released == 3);
    CHECK(c.handed.empty());
    // Undone by its savepoint: the batch's transaction itself committed.
    CHECK(batcher.commits() == commits + 1);
    auto s = db->session();
    CHECK_FALSE(s->messages().get(f.app.id, failed.id).has_value());
    CHECK(s->deliveries().for_message(failed.id).empty());

    batcher.run([&](Session& w) { published = enqueuer.publish(w, ok); });
    CHECK(published == 3);
    c = listener.calls();
    CHECK(c.reserved == 6);
    CHECK(c.released == 3);
    REQUIRE(c.handed.size() == 1);
    CHECK(c.handed[0].deliveries.size() == 3);
    CHECK(id_set(c.handed[0].deliveries) == id_set(s->deliveries().for_message(ok.id)));
  }

  TEST_CASE("recover wakes the listener once committed, at once outside a transaction, or never") {
    TempDir dir;
    auto db = open_sqlite(dir.file("herald.db"));
    FakeListener listener(0);
    Listening listening(*db, listener);
    auto s = db->session();
    const TimeMs now = wall_now();
    const auto app = add_app(*s, now);
    const auto ep = add_endpoint(*s, app.id, kUrl, "k", now);
    const auto m = add_message(*s, app.id, "{}", now);
    add_delivery(*s, m, ep.id, now - 20, DeliveryStatus::kFail);
    add_delivery(*s, m, ep.id, now - 10, DeliveryStatus::kFail);
    const auto recover = [&](TimeMs since, TimeMs until) {
      std::string last;
      return s->queue().recover(ep.id, since, until, now, "", 100, &last);
    };

    s->begin();
    CHECK(recover(now - 20, now - 10) == 1);
    CHECK(listener.calls().wakes == 0);
    s->commit();
    CHECK(listener.calls().wakes == 1);
    s->begin();
    CHECK(recover(now - 10, now) == 1);
    s->rollback();
    CHECK(listener.calls().wakes == 1);
    CHECK(recover(now - 10, now) == 1);
    CHECK(listener.calls().wakes == 2);
    CHECK(recover(now - 100, now) == 0);
    CHECK(listener.calls().wakes == 2);
  }

  TEST_CASE("enqueue without room writes pending deliveries and wakes the listener after commit") {
    TempDir dir;
    auto db = open_sqlite(dir.file("herald.db"));
    ManualClock clock(wall_now());
    const TimeMs now = clock.now_ms();
    const auto f = add_fanout(*db, now, 3);
    Enqueuer enqueuer(clock);
    FakeListener listener(0);
    Listening listening(*db, listener);
    const auto m = make_message(f.app.id, now, "a.b");

    auto s = db->begin();
    CHECK(enqueuer.publish(*s, m) == 3);
    CHECK(listener.calls().asked == 3);
    CHECK(listener.calls().wakes == 0);
    s->commit();
    auto c = listener.calls();
    CHECK(c.wakes == 1);
    CHECK(c.reserved == 0);
    CHECK(c.released == 0);
    CHECK(c.handed.empty());
    const auto rows = s->deliveries().for_message(m.id);
    REQUIRE(rows.size() == 3);
    for (const auto& d : rows) {
      CHECK(d.status == DeliveryStatus::kPending);
      CHECK(d.next_attempt_at == now);
    }
    CHECK(id_set(claim_due(*s, now, 1000)) == id_set(rows));

    // Rolled back, it wakes nobody.
    s->begin();
    enqueuer.publish(*s, make_message(f.app.id, now, "a.b"));
    s->rollback();
    CHECK(listener.calls().wakes == 1);
  }
}

// ---------------------------------------------------------------------------------------------
// The PostgreSQL backend itself: its migrations

TEST_CASE("PostgreSQL migrations 2 and 3 drop the foreign keys of messages and the queue") {
  if (store_kind() != StoreKind::kPostgres) return;  // SQLite's tables keep theirs
  TestStore store;
  const TimeMs now = wall_now();
  std::string delivery_id;
  {
    auto db = store.open();
    auto s = db->session();
    const auto app = add_app(*s, now, "a", "a");
    const auto ep = add_endpoint(*s, app.id, kUrl, "k", now);
    const auto m = add_message(*s, app.id, R"({"n":1})", now, "a.b");
    delivery_id = add_delivery(*s, m, ep.id, now).id;
  }
  pg::Connection c(store.location());
  auto foreign_keys = [&] {
    return c
        .query(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid IN "
            "('messages'::regclass, 'deliveries'::regclass, 'attempts'::regclass)")
        .get_int(0, 0);
  };
  CHECK(foreign_keys() == 0);

  // The database as version 1 left it: the same keys, under the names it gave them.
  c.exec(
      "ALTER TABLE deliveries ADD FOREIGN KEY (msg_id) REFERENCES messages(id) ON DELETE CASCADE;"
      "ALTER TABLE deliveries ADD FOREIGN KEY (endpoint_id) REFERENCES endpoints(id) "
      "ON DELETE CASCADE;"
      "ALTER TABLE attempts ADD FOREIGN KEY (msg_id) REFERENCES messages(id) ON DELETE CASCADE;"
      "ALTER TABLE attempts ADD FOREIGN KEY (endpoint_id) REFERENCES endpoints(id) "
      "ON DELETE CASCADE;"
      "ALTER TABLE messages ADD FOREIGN KEY (app_id) REFERENCES applications(id) "
      "ON DELETE CASCADE;"
      "DELETE FROM schema_version WHERE version > 1");
  REQUIRE(foreign_keys() == 5);

  pg::migrate(c);
  CHECK(foreign_keys() == 0);
  CHECK(c.query("SELECT max(version) FROM schema_version").get_int(0, 0) ==
        pg::latest_schema_version());
  CHECK(c.query("SELECT count(*) FROM schema_version").get_int(0, 0) ==
        pg::latest_schema_version());
  auto db = store.open();
  CHECK(db->session()->deliveries().get(delivery_id));
}
