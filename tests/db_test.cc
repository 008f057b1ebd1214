// Tests of the database layer against real SQLite files in fresh temporary directories.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/ids.h"
#include "core/types.h"
#include "db/app_store.h"
#include "db/attempt_store.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/event_type_store.h"
#include "db/idempotency_store.h"
#include "db/list.h"
#include "db/message_store.h"
#include "db/migrations.h"
#include "db/pool.h"
#include "db/sqlite.h"
#include "db/token_store.h"
#include "db/write_batcher.h"

using namespace herald;
using namespace std::chrono_literals;
using namespace std::string_literals;

namespace {

namespace fs = std::filesystem;

TimeMs wall_now() {
  return SystemClock().now_ms();
}

// A directory of its own under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("herald_db_test_" + std::to_string(rd()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// A fresh database file with a small pool.
struct TestDb {
  TempDir dir;
  std::string path = dir.file("herald.db");
  std::unique_ptr<Database> db = std::make_unique<Database>(path, 4);
};

int64_t scalar(Connection& c, const std::string& sql) {
  auto st = c.prepare(sql);
  REQUIRE(st.step());
  return st.get_int(0);
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

Application make_app(TimeMs now, std::optional<std::string> uid, std::string name = "app") {
  Application a;
  a.id = new_id(kAppPrefix, now);
  a.uid = std::move(uid);
  a.name = std::move(name);
  a.created_at = a.updated_at = now;
  return a;
}

Endpoint make_endpoint(const std::string& app_id, TimeMs now, std::optional<std::string> uid,
                       std::string url = "https://example.com/hook") {
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

Delivery make_delivery(const Message& m, const std::string& endpoint_id, TimeMs now, TimeMs due,
                       DeliveryStatus status = DeliveryStatus::kPending) {
  Delivery d;
  d.id = new_id(kDeliveryPrefix, now);
  d.app_id = m.app_id;
  d.msg_id = m.id;
  d.endpoint_id = endpoint_id;
  d.status = status;
  d.next_attempt_at = due;
  d.created_at = d.updated_at = now;
  return d;
}

Attempt make_attempt(const Delivery& d, TimeMs now, DeliveryStatus status, int code) {
  Attempt a;
  a.id = new_id(kAttemptPrefix, now);
  a.app_id = d.app_id;
  a.msg_id = d.msg_id;
  a.endpoint_id = d.endpoint_id;
  a.delivery_id = d.id;
  a.url = "https://example.com/hook";
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

std::vector<std::string> names_of(const std::vector<EventType>& items) {
  std::vector<std::string> out;
  for (const auto& i : items) out.push_back(i.name);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Connection, migrations, transactions

TEST_CASE("migrations apply, are idempotent, and the journal is WAL") {
  TempDir dir;
  const std::string path = dir.file("herald.db");
  {
    Database db(path, 2);
    auto c = db.acquire();
    CHECK(scalar(*c, "SELECT max(version) FROM schema_version") == latest_schema_version());
    CHECK(scalar(*c, "SELECT count(*) FROM schema_version") == latest_schema_version());
    for (const char* table :
         {"applications", "endpoints", "endpoint_secrets", "event_types", "messages", "deliveries",
          "attempts", "api_tokens", "idempotency_keys"}) {
      CAPTURE(table);
      CHECK(scalar(*c, std::string("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                   "name = '") +
                           table + "'") == 1);
    }
    AppStore(*c).insert(make_app(wall_now(), "kept"));
  }
  {
    // Opening again applies nothing twice and keeps the data.
    Database db(path, 2);
    auto c = db.acquire();
    CHECK(scalar(*c, "SELECT max(version) FROM schema_version") == latest_schema_version());
    CHECK(scalar(*c, "SELECT count(*) FROM schema_version") == latest_schema_version());
    CHECK(AppStore(*c).get_by_uid("kept").has_value());
    // migrate() on an up-to-date connection is a no-op too.
    migrate(*c);
    CHECK(scalar(*c, "SELECT count(*) FROM schema_version") == latest_schema_version());
  }
  {
    // Every pooled connection, not only the first, is in WAL mode with foreign keys on.
    Database db(path, 3);
    auto a = db.acquire();
    auto b = db.acquire();
    for (Connection* c : {&*a, &*b}) {
      auto st = c->prepare("PRAGMA journal_mode");
      REQUIRE(st.step());
      CHECK(st.get_text(0) == "wal");
      CHECK(scalar(*c, "PRAGMA foreign_keys") == 1);
    }
  }
}

TEST_CASE("Transaction rolls back unless committed") {
  TestDb t;
  auto c = t.db->acquire();
  AppStore apps(*c);
  const TimeMs now = wall_now();
  const auto rolled = make_app(now, "rolled");
  const auto thrown = make_app(now, "thrown");
  const auto committed = make_app(now, "committed");
  {
    Transaction tx(*c);
    apps.insert(rolled);
    CHECK(apps.get(rolled.id).has_value());  // visible inside the transaction
  }
  CHECK_FALSE(apps.get(rolled.id).has_value());

  CHECK_THROWS_AS(
      [&] {
        Transaction tx(*c);
        apps.insert(thrown);
        throw std::runtime_error("boom");
      }(),
      std::runtime_error);
  CHECK_FALSE(apps.get(thrown.id).has_value());

  {
    Transaction tx(*c);
    apps.insert(committed);
    tx.commit();
  }
  CHECK(apps.get(committed.id).has_value());

  // The committed row is visible through another connection too.
  auto other = t.db->acquire();
  CHECK(AppStore(*other).get(committed.id).has_value());
  CHECK_FALSE(AppStore(*other).get(rolled.id).has_value());
}

// ---------------------------------------------------------------------------------------------
// AppStore

TEST_CASE("AppStore insert, get by id and uid, update") {
  TestDb t;
  auto c = t.db->acquire();
  AppStore apps(*c);
  const TimeMs now = wall_now();
  auto a = make_app(now, "my-uid", "First");
  a.throttle_rate = 7;
  a.metadata = {{"k", "v"}, {"x", "y"}};
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
  apps.insert(make_app(now, std::nullopt));
  apps.insert(make_app(now, std::nullopt));

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

  auto ghost = make_app(now, "ghost");
  CHECK_FALSE(apps.update(ghost));
}

TEST_CASE("AppStore duplicate uid is a constraint error") {
  TestDb t;
  auto c = t.db->acquire();
  AppStore apps(*c);
  const TimeMs now = wall_now();
  apps.insert(make_app(now, "dup"));
  CHECK(throws_constraint([&] { apps.insert(make_app(now, "dup")); }));
  CHECK_THROWS_AS(apps.insert(make_app(now, "dup")), DbError);

  // Updating another app onto a taken uid is one too.
  auto b = make_app(now, "b");
  apps.insert(b);
  b.uid = "dup";
  CHECK(throws_constraint([&] { apps.update(b); }));
}

TEST_CASE("AppStore list pages forwards and backwards") {
  TestDb t;
  auto c = t.db->acquire();
  AppStore apps(*c);
  const TimeMs now = wall_now();
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    auto a = make_app(now + i, "uid-" + std::to_string(i));
    apps.insert(a);
    ids.push_back(a.id);
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

TEST_CASE("AppStore remove cascades to endpoints, messages, deliveries and attempts") {
  TestDb t;
  auto c = t.db->acquire();
  AppStore apps(*c);
  EndpointStore endpoints(*c);
  MessageStore messages(*c);
  DeliveryStore deliveries(*c);
  AttemptStore attempts(*c);
  const TimeMs now = wall_now();

  auto doomed = make_app(now, "doomed");
  auto kept = make_app(now, "kept");
  apps.insert(doomed);
  apps.insert(kept);

  auto ep = make_endpoint(doomed.id, now, "ep");
  auto kept_ep = make_endpoint(kept.id, now, "ep");
  endpoints.insert(ep, "key-doomed");
  endpoints.insert(kept_ep, "key-kept");
  auto m = make_message(doomed.id, now, "a.b");
  auto kept_m = make_message(kept.id, now, "a.b");
  messages.insert(m);
  messages.insert(kept_m);
  auto d = make_delivery(m, ep.id, now, now);
  auto kept_d = make_delivery(kept_m, kept_ep.id, now, now);
  deliveries.insert(d);
  deliveries.insert(kept_d);
  auto a = make_attempt(d, now, DeliveryStatus::kFail, 500);
  attempts.insert(a);

  CHECK(apps.remove(doomed.id));
  CHECK_FALSE(apps.get(doomed.id));
  CHECK_FALSE(endpoints.get(doomed.id, ep.id));
  CHECK(endpoints.signing_keys(ep.id, now).empty());
  CHECK_FALSE(messages.get(doomed.id, m.id));
  CHECK_FALSE(deliveries.get(d.id));
  CHECK(deliveries.for_message(m.id).empty());
  CHECK_FALSE(attempts.get(doomed.id, a.id));
  CHECK(scalar(*c, "SELECT count(*) FROM deliveries WHERE app_id = '" + doomed.id + "'") == 0);
  CHECK_FALSE(apps.remove(doomed.id));

  // The other app is untouched.
  CHECK(apps.get(kept.id));
  CHECK(endpoints.get(kept.id, kept_ep.id));
  CHECK(messages.get(kept.id, kept_m.id));
  CHECK(deliveries.get(kept_d.id));
}

// ---------------------------------------------------------------------------------------------
// EndpointStore

TEST_CASE("EndpointStore insert, scoped get, enabled_for_app, update, remove") {
  TestDb t;
  auto c = t.db->acquire();
  AppStore apps(*c);
  EndpointStore endpoints(*c);
  const TimeMs now = wall_now();
  auto app = make_app(now, "one");
  auto other = make_app(now, "two");
  apps.insert(app);
  apps.insert(other);

  const std::string key = "raw\0key\xff bytes"s;
  auto ep = make_endpoint(app.id, now, "ep-uid", "https://a.example/hook");
  ep.description = "first";
  ep.throttle_rate = 10;
  ep.event_types = std::vector<std::string>{"user.created", "user.deleted"};
  ep.channels = std::vector<std::string>{"ch1"};
  ep.metadata = {{"team", "x"}};
  ep.headers = {{"x-custom", "yes"}};
  endpoints.insert(ep, key);

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
  CHECK(endpoints.current_key(ep.id) == std::optional<std::string>(key));  // blob, NUL intact

  auto by_uid = endpoints.get(app.id, "ep-uid");
  REQUIRE(by_uid);
  CHECK(by_uid->id == ep.id);

  // Scoped to the app: another app sees neither the id nor the uid.
  CHECK_FALSE(endpoints.get(other.id, ep.id));
  CHECK_FALSE(endpoints.get(other.id, "ep-uid"));

  // The same uid in another app is fine; twice in one app is not.
  endpoints.insert(make_endpoint(other.id, now, "ep-uid"), "k");
  CHECK(throws_constraint([&] { endpoints.insert(make_endpoint(app.id, now, "ep-uid"), "k"); }));

  auto disabled = make_endpoint(app.id, now + 1, std::nullopt);
  disabled.disabled = true;
  disabled.disabled_reason = "gone";
  endpoints.insert(disabled, "k2");
  auto second = make_endpoint(app.id, now + 2, std::nullopt);
  endpoints.insert(second, "k3");

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

  CHECK_FALSE(endpoints.remove(other.id, ep.id));
  CHECK(endpoints.remove(app.id, ep.id));
  CHECK_FALSE(endpoints.get(app.id, ep.id));
  CHECK_FALSE(endpoints.current_key(ep.id));
}

TEST_CASE("EndpointStore rotate_key keeps the old key for its grace period") {
  TestDb t;
  auto c = t.db->acquire();
  AppStore apps(*c);
  EndpointStore endpoints(*c);
  const TimeMs t0 = wall_now();
  auto app = make_app(t0, std::nullopt);
  apps.insert(app);
  auto ep = make_endpoint(app.id, t0, std::nullopt);
  endpoints.insert(ep, "key-1");
  CHECK(endpoints.signing_keys(ep.id, t0) == std::vector<std::string>{"key-1"});

  const TimeMs rotated_at = t0 + 10;
  const int64_t grace = 1000;
  endpoints.rotate_key(ep.id, "key-2", grace, rotated_at);
  CHECK(endpoints.current_key(ep.id) == std::optional<std::string>("key-2"));
  // The current key first, then the old one while its grace lasts.
  CHECK(endpoints.signing_keys(ep.id, rotated_at) == std::vector<std::string>{"key-2", "key-1"});
  CHECK(endpoints.signing_keys(ep.id, rotated_at + grace - 1) ==
        std::vector<std::string>{"key-2", "key-1"});
  CHECK(endpoints.signing_keys(ep.id, rotated_at + grace) == std::vector<std::string>{"key-2"});
  CHECK(endpoints.signing_keys(ep.id, rotated_at + 10 * grace) ==
        std::vector<std::string>{"key-2"});

  // A second rotation within the grace keeps both older keys, newest first.
  endpoints.rotate_key(ep.id, "key-3", grace, rotated_at + 100);
  CHECK(endpoints.signing_keys(ep.id, rotated_at + 100) ==
        std::vector<std::string>{"key-3", "key-2", "key-1"});
  CHECK(endpoints.signing_keys(ep.id, rotated_at + grace + 50) ==
        std::vector<std::string>{"key-3", "key-2"});

  // Rotating after graces ended drops the expired keys from the table.
  endpoints.rotate_key(ep.id, "key-4", grace, rotated_at + 5000);
  CHECK(scalar(*c, "SELECT count(*) FROM endpoint_secrets WHERE endpoint_id = '" + ep.id + "'") ==
        2);
  CHECK(endpoints.signing_keys(ep.id, rotated_at + 5000) ==
        std::vector<std::string>{"key-4", "key-3"});

  SUBCASE("grace 0 drops the old key at once") {
    auto ep2 = make_endpoint(app.id, t0, std::nullopt);
    endpoints.insert(ep2, "old");
    endpoints.rotate_key(ep2.id, "new", 0, t0 + 20);
    CHECK(endpoints.signing_keys(ep2.id, t0 + 20) == std::vector<std::string>{"new"});
    CHECK(endpoints.current_key(ep2.id) == std::optional<std::string>("new"));
  }
}

// ---------------------------------------------------------------------------------------------
// EventTypeStore

TEST_CASE("EventTypeStore CRUD and list without archived types") {
  TestDb t;
  auto c = t.db->acquire();
  EventTypeStore types(*c);
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
  changed.updated_at = now + 7;
  CHECK(types.update(changed));
  auto after = types.get("invoice.paid");
  REQUIRE(after);
  CHECK(after->description == "new text");
  CHECK(after->archived);
  CHECK(after->deprecated);
  CHECK_FALSE(after->schemas_json);
  CHECK(after->updated_at == now + 7);
  CHECK(names_of(types.list(ListParams{}, false).items) ==
        std::vector<std::string>{"user.created", "zeta.event"});
  CHECK_FALSE(types.update(make("missing")));

  CHECK(types.remove("zeta.event"));
  CHECK_FALSE(types.get("zeta.event"));
  CHECK_FALSE(types.remove("zeta.event"));
}

// ---------------------------------------------------------------------------------------------
// MessageStore

TEST_CASE("MessageStore get, event id uniqueness, list newest first with filters") {
  TestDb t;
  auto c = t.db->acquire();
  AppStore apps(*c);
  MessageStore messages(*c);
  const TimeMs now = wall_now();
  auto app = make_app(now, std::nullopt);
  auto other = make_app(now, std::nullopt);
  apps.insert(app);
  apps.insert(other);

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

// ---------------------------------------------------------------------------------------------
// DeliveryStore

TEST_CASE("DeliveryStore claim takes due rows under a lease and reclaims lapsed ones") {
  TestDb t;
  auto c = t.db->acquire();
  AppStore apps(*c);
  EndpointStore endpoints(*c);
  MessageStore messages(*c);
  DeliveryStore deliveries(*c);
  const TimeMs t0 = wall_now();
  auto app = make_app(t0, std::nullopt);
  apps.insert(app);
  auto ep = make_endpoint(app.id, t0, std::nullopt);
  endpoints.insert(ep, "k");
  auto m = make_message(app.id, t0, "a");
  messages.insert(m);

  CHECK_FALSE(deliveries.next_due());

  auto due_now = make_delivery(m, ep.id, t0, t0);
  auto overdue = make_delivery(m, ep.id, t0, t0 - 10);  // inserted later, due earlier
  auto later = make_delivery(m, ep.id, t0, t0 + 1000);
  auto done = make_delivery(m, ep.id, t0, t0 - 50, DeliveryStatus::kSuccess);
  auto failed = make_delivery(m, ep.id, t0, t0 - 50, DeliveryStatus::kFail);
  for (const auto& d : {due_now, overdue, later, done, failed}) deliveries.insert(d);
  CHECK(deliveries.next_due() == std::optional<TimeMs>(t0 - 10));

  const int64_t lease = 5000;
  const auto claim = [&](TimeMs now, int limit = 10) {
    Transaction tx(*c);
    auto out = deliveries.claim(now, lease, limit);
    tx.commit();
    return out;
  };
  // RETURNING yields rows in no particular order: compare claimed ids as sets.
  const auto id_set = [](const std::vector<Delivery>& ds) {
    std::set<std::string> out;
    for (const auto& d : ds) out.insert(d.id);
    return out;
  };

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
    auto stored = deliveries.get(d.id);
    REQUIRE(stored);
    CHECK(stored->status == DeliveryStatus::kSending);
    CHECK(stored->next_attempt_at == t0 + lease);
    CHECK(stored->updated_at == t0);
  }
  CHECK(deliveries.stats(ep.id).sending == 2);

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
  CHECK(deliveries.get(done.id)->status == DeliveryStatus::kSuccess);
  CHECK(deliveries.get(failed.id)->status == DeliveryStatus::kFail);
}

TEST_CASE(
    "DeliveryStore parking: update without a due time, claim_parked, parked_endpoints, "
    "queue_state") {
  TestDb t;
  auto c = t.db->acquire();
  AppStore apps(*c);
  EndpointStore endpoints(*c);
  MessageStore messages(*c);
  DeliveryStore deliveries(*c);
  const TimeMs t0 = wall_now();
  auto app = make_app(t0, std::nullopt);
  apps.insert(app);
  auto busy = make_endpoint(app.id, t0, std::nullopt);
  auto open_ep = make_endpoint(app.id, t0, std::nullopt);
  for (const auto& ep : {busy, open_ep}) endpoints.insert(ep, "k");
  auto m = make_message(app.id, t0, "a");
  messages.insert(m);
  std::vector<Delivery> to_busy;
  for (int i = 0; i < 5; ++i) to_busy.push_back(make_delivery(m, busy.id, t0, t0 - 50 + i));
  auto busy_later = make_delivery(m, busy.id, t0, t0 + 60000);  // a retry, not yet due
  auto to_free = make_delivery(m, open_ep.id, t0, t0 - 10);
  for (const auto& d : to_busy) deliveries.insert(d);
  for (const auto& d : {busy_later, to_free}) deliveries.insert(d);

  auto q = deliveries.queue_state(t0);
  CHECK(q.queued == 7);
  CHECK(q.parked == 0);
  CHECK(q.oldest_due == std::optional<TimeMs>(t0 - 50));

  // Parking takes a pending row out of the due order.
  {
    Transaction tx(*c);
    for (const auto& d : to_busy) {
      deliveries.update({d.id, DeliveryStatus::kPending, 0, std::nullopt}, t0);
    }
    tx.commit();
  }
  CHECK(deliveries.parked_endpoints() == std::vector<std::string>{busy.id});
  CHECK(deliveries.get(busy_later.id)->next_attempt_at == t0 + 60000);
  CHECK(deliveries.stats(busy.id).pending == 6);  // parked still reads as pending
  q = deliveries.queue_state(t0);
  CHECK(q.queued == 2);
  CHECK(q.parked == 5);
  CHECK(q.oldest_due == std::optional<TimeMs>(t0 - 10));
  CHECK(deliveries.next_due() == std::optional<TimeMs>(t0 - 10));
  {
    Transaction tx(*c);
    auto claimed = deliveries.claim(t0, 1000, 10);
    tx.commit();
    CHECK(ids_of(claimed) == std::vector<std::string>{to_free.id});  // nothing parked
  }

  // Claimed back per endpoint, oldest made first, under a lease.
  std::vector<Delivery> got;
  {
    Transaction tx(*c);
    got = deliveries.claim_parked(busy.id, t0 + 5, 1000, 2);
    tx.commit();
  }
  REQUIRE(got.size() == 2);
  std::set<std::string> first_two{to_busy[0].id, to_busy[1].id};
  for (const auto& d : got) {
    CHECK(first_two.count(d.id) == 1);
    CHECK(d.status == DeliveryStatus::kSending);
    CHECK(d.next_attempt_at == t0 + 5 + 1000);
  }
  {
    Transaction tx(*c);
    CHECK(deliveries.claim_parked(busy.id, t0 + 5, 1000, 10).size() == 3);
    CHECK(deliveries.claim_parked(busy.id, t0 + 5, 1000, 10).empty());
    CHECK(deliveries.claim_parked(open_ep.id, t0 + 5, 1000, 10).empty());
    tx.commit();
  }
  CHECK(deliveries.parked_endpoints().empty());
  CHECK(deliveries.queue_state(t0 + 5).parked == 0);

  // A parked row updated back to pending with a due time is due again.
  {
    Transaction tx(*c);
    deliveries.update({got[0].id, DeliveryStatus::kPending, 1, std::nullopt}, t0 + 6);
    CHECK(deliveries.parked_endpoints() == std::vector<std::string>{busy.id});
    deliveries.update({got[0].id, DeliveryStatus::kPending, 1, t0 + 7}, t0 + 6);
    CHECK(deliveries.parked_endpoints().empty());
    tx.commit();
  }
}

TEST_CASE(
    "WriteBatcher shares commits between concurrent callers; a failing work undoes only itself") {
  TestDb t;
  const TimeMs t0 = wall_now();
  auto app = make_app(t0, std::nullopt);
  {
    auto c = t.db->acquire();
    AppStore(*c).insert(app);
  }
  WriteBatcher batcher(*t.db);
  constexpr int kThreads = 16;
  constexpr int kPerThread = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < kPerThread; ++j) {
        auto m = make_message(app.id, t0, "ok");
        try {
          batcher.run([&](Connection& c) {
            MessageStore(c).insert(m);
            // Every tenth work writes, then fails: its message must not survive.
            if (j % 10 == 9) throw std::runtime_error("work " + std::to_string(i));
          });
        } catch (const std::runtime_error& e) {
          CHECK(std::string(e.what()) == "work " + std::to_string(i));
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures.load() == kThreads * kPerThread / 10);
  auto c = t.db->acquire();
  CHECK(scalar(*c, "SELECT count(*) FROM messages") == kThreads * kPerThread * 9 / 10);
  // Group commit: far fewer transactions than works (each work alone would be one).
  CHECK(batcher.commits() < static_cast<uint64_t>(kThreads * kPerThread));
  CHECK(batcher.commits() > 0);

  // A constraint error inside a work reaches its caller as a DbError, nothing else changes.
  auto dup = make_message(app.id, t0, "dup");
  batcher.run([&](Connection& conn) { MessageStore(conn).insert(dup); });
  CHECK(throws_constraint(
      [&] { batcher.run([&](Connection& conn) { MessageStore(conn).insert(dup); }); }));
  CHECK(scalar(*c, "SELECT count(*) FROM messages WHERE id = '" + dup.id + "'") == 1);
}

TEST_CASE("DeliveryStore update, next_due, stats and for_message") {
  TestDb t;
  auto c = t.db->acquire();
  AppStore apps(*c);
  EndpointStore endpoints(*c);
  MessageStore messages(*c);
  DeliveryStore deliveries(*c);
  const TimeMs t0 = wall_now();
  auto app = make_app(t0, std::nullopt);
  apps.insert(app);
  auto ep1 = make_endpoint(app.id, t0, std::nullopt);
  auto ep2 = make_endpoint(app.id, t0 + 1, std::nullopt);
  endpoints.insert(ep1, "k1");
  endpoints.insert(ep2, "k2");
  auto m1 = make_message(app.id, t0, "a");
  auto m2 = make_message(app.id, t0, "a");
  messages.insert(m1);
  messages.insert(m2);

  auto d1 = make_delivery(m1, ep1.id, t0, t0 + 100);
  auto d2 = make_delivery(m1, ep2.id, t0, t0 + 200);
  auto d3 = make_delivery(m2, ep1.id, t0, t0 + 300);
  auto d4 = make_delivery(m2, ep1.id, t0, t0 + 400);
  for (const auto& d : {d2, d1, d3, d4}) deliveries.insert(d);

  auto for_m1 = deliveries.for_message(m1.id);
  CHECK(ids_of(for_m1) == std::vector<std::string>{d1.id, d2.id});  // by endpoint
  CHECK(deliveries.for_message(m2.id).size() == 2);
  CHECK(deliveries.for_message("msg_nothing").empty());

  auto s = deliveries.stats(ep1.id);
  CHECK(s.pending == 3);
  CHECK(s.success == 0);
  CHECK(s.fail == 0);
  CHECK(s.sending == 0);
  CHECK(deliveries.next_due() == std::optional<TimeMs>(t0 + 100));

  deliveries.update({d1.id, DeliveryStatus::kSuccess, 1, std::nullopt}, t0 + 150);
  auto got1 = deliveries.get(d1.id);
  REQUIRE(got1);
  CHECK(got1->status == DeliveryStatus::kSuccess);
  CHECK(got1->attempts == 1);
  CHECK(got1->updated_at == t0 + 150);
  CHECK(got1->created_at == t0);
  CHECK(deliveries.next_due() == std::optional<TimeMs>(t0 + 200));

  deliveries.update({d3.id, DeliveryStatus::kPending, 2, t0 + 50}, t0 + 160);
  auto got3 = deliveries.get(d3.id);
  CHECK(got3->status == DeliveryStatus::kPending);
  CHECK(got3->attempts == 2);
  CHECK(got3->next_attempt_at == t0 + 50);
  CHECK(deliveries.next_due() == std::optional<TimeMs>(t0 + 50));

  deliveries.update({d4.id, DeliveryStatus::kFail, 8, std::nullopt}, t0 + 170);
  CHECK(deliveries.get(d4.id)->status == DeliveryStatus::kFail);

  s = deliveries.stats(ep1.id);
  CHECK(s.success == 1);
  CHECK(s.pending == 1);
  CHECK(s.fail == 1);
  CHECK(s.sending == 0);
  auto s2 = deliveries.stats(ep2.id);
  CHECK(s2.pending == 1);
  CHECK(s2.success + s2.fail + s2.sending == 0);

  {
    Transaction tx(*c);
    CHECK(deliveries.claim(t0 + 1000, 10, 10).size() == 2);  // d2 and d3
    tx.commit();
  }
  s2 = deliveries.stats(ep2.id);
  CHECK(s2.sending == 1);
  CHECK(s2.pending == 0);
  // A leased row is due again when its lease lapses.
  CHECK(deliveries.next_due() == std::optional<TimeMs>(t0 + 1010));

  deliveries.update({d2.id, DeliveryStatus::kSuccess, 1, std::nullopt}, t0 + 1001);
  deliveries.update({d3.id, DeliveryStatus::kSuccess, 3, std::nullopt}, t0 + 1001);
  CHECK_FALSE(deliveries.next_due());
}

// ---------------------------------------------------------------------------------------------
// AttemptStore

TEST_CASE("AttemptStore lists by message and by endpoint, newest first, filtered and paged") {
  TestDb t;
  auto c = t.db->acquire();
  AppStore apps(*c);
  EndpointStore endpoints(*c);
  MessageStore messages(*c);
  DeliveryStore deliveries(*c);
  AttemptStore attempts(*c);
  const TimeMs t0 = wall_now();
  auto app = make_app(t0, std::nullopt);
  auto other = make_app(t0, std::nullopt);
  apps.insert(app);
  apps.insert(other);
  auto ep1 = make_endpoint(app.id, t0, std::nullopt);
  auto ep2 = make_endpoint(app.id, t0, std::nullopt);
  endpoints.insert(ep1, "k1");
  endpoints.insert(ep2, "k2");
  auto m1 = make_message(app.id, t0, "a");
  auto m2 = make_message(app.id, t0, "a");
  messages.insert(m1);
  messages.insert(m2);
  auto d11 = make_delivery(m1, ep1.id, t0, t0);
  auto d12 = make_delivery(m1, ep2.id, t0, t0);
  auto d21 = make_delivery(m2, ep1.id, t0, t0);
  for (const auto& d : {d11, d12, d21}) deliveries.insert(d);

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
  for (const auto& a : made) attempts.insert(a);
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

// ---------------------------------------------------------------------------------------------
// TokenStore

TEST_CASE("TokenStore insert, find_by_hash, count_admin, purge_expired") {
  TestDb t;
  auto c = t.db->acquire();
  AppStore apps(*c);
  TokenStore tokens(*c);
  const TimeMs now = wall_now();
  auto app = make_app(now, std::nullopt);
  apps.insert(app);

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
  auto admin = make("\x00\x01hash-admin\xff"s, std::nullopt, std::nullopt);
  auto expiring = make("hash-expiring", std::nullopt, now + 100);
  auto scoped = make("hash-scoped", app.id, std::nullopt);
  tokens.insert(admin);
  tokens.insert(expiring);
  tokens.insert(scoped);
  CHECK(throws_constraint([&] { tokens.insert(make("hash-scoped", std::nullopt, {})); }));

  auto found = tokens.find_by_hash(admin.hash);
  REQUIRE(found);
  CHECK(found->id == admin.id);
  CHECK(found->hash == admin.hash);
  CHECK_FALSE(found->app_id);
  CHECK(found->name == admin.name);
  CHECK_FALSE(found->expires_at);
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
}

// ---------------------------------------------------------------------------------------------
// IdempotencyStore

TEST_CASE("IdempotencyStore claim, complete, release, expiry and purge") {
  TestDb t;
  auto c = t.db->acquire();
  IdempotencyStore keys(*c);
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
  CHECK(scalar(*c, "SELECT count(*) FROM idempotency_keys") == 4);
  CHECK(keys.purge(t0 + 5, 2) == 2);
  CHECK(keys.purge(t0 + 5, 10) == 1);
  CHECK(keys.purge(t0 + 5, 10) == 0);
  CHECK(scalar(*c, "SELECT count(*) FROM idempotency_keys") == 1);
  CHECK(keys.claim("tok", "k1", "/api/v1/app", t0 + 10'003, 0).state == State::kInProgress);
}

// ---------------------------------------------------------------------------------------------
// Database pool

TEST_CASE("Database pool serves concurrent writers through separate connections") {
  TestDb t;
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
          auto c = t.db->acquire();
          Transaction tx(*c);
          auto app = make_app(now, "t" + std::to_string(i) + "-" + std::to_string(j));
          AppStore(*c).insert(app);
          tx.commit();
          made[static_cast<size_t>(i)].push_back(app.id);
        }
      } catch (...) {
        ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(errors.load() == 0);

  auto c = t.db->acquire();
  CHECK(scalar(*c, "SELECT count(*) FROM applications") == kThreads * kPerThread);
  AppStore apps(*c);
  int found = 0;
  for (const auto& ids : made) {
    for (const auto& id : ids) found += apps.get(id).has_value() ? 1 : 0;
  }
  CHECK(found == kThreads * kPerThread);
}

TEST_CASE("Database pool bounds open connections: acquire waits for a release") {
  TempDir dir;
  Database db(dir.file("bounded.db"), 1);
  std::atomic<bool> acquired{false};
  std::thread waiter;
  {
    auto held = db.acquire();
    waiter = std::thread([&] {
      auto h = db.acquire();
      acquired = true;
    });
    std::this_thread::sleep_for(100ms);
    CHECK_FALSE(acquired.load());
  }
  waiter.join();
  CHECK(acquired.load());
}

// ---------------------------------------------------------------------------------------------
// Delivery guarantees: schema version 2, endpoint health, retention, recover

namespace {

bool has_column(Connection& c, const std::string& table, const std::string& column) {
  return scalar(c, "SELECT count(*) FROM pragma_table_info('" + table + "') WHERE name = '" +
                       column + "'") == 1;
}

// An id with `prefix` made at `t`, the `n`th (n >= 1) of that millisecond. new_id() can't make
// it: it never hands out an id sorting before one it made earlier in this process.
std::string id_at(std::string_view prefix, TimeMs t, int n) {
  static constexpr std::string_view kDigits =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string id = id_lower_bound(prefix, t);
  int carry = n;
  for (size_t i = id.size(); carry > 0 && i-- > prefix.size() + 1;) {
    const int v = static_cast<int>(kDigits.find(id[i])) + carry;
    id[i] = kDigits[static_cast<size_t>(v % 62)];
    carry = v / 62;
  }
  REQUIRE(is_id_with_prefix(id, prefix));
  REQUIRE(id >= id_lower_bound(prefix, t));
  REQUIRE(id < id_lower_bound(prefix, t + 1));
  return id;
}

}  // namespace

TEST_CASE("migration 2 adds endpoints.failing_since to a fresh database") {
  TestDb t;
  auto c = t.db->acquire();
  CHECK(latest_schema_version() >= 2);
  CHECK(scalar(*c, "SELECT max(version) FROM schema_version") == latest_schema_version());
  CHECK(scalar(*c, "SELECT count(*) FROM schema_version WHERE version = 2") == 1);
  CHECK(has_column(*c, "endpoints", "failing_since"));
  CHECK_FALSE(has_column(*c, "endpoints", "no_such_column"));  // the helper can say no

  // A new endpoint is not failing.
  const TimeMs now = wall_now();
  auto app = make_app(now, std::nullopt);
  AppStore(*c).insert(app);
  auto ep = make_endpoint(app.id, now, std::nullopt);
  EndpointStore(*c).insert(ep, "k");
  auto got = EndpointStore(*c).get(app.id, ep.id);
  REQUIRE(got);
  CHECK_FALSE(got->failing_since.has_value());
  CHECK(scalar(*c, "SELECT count(*) FROM endpoints WHERE failing_since IS NULL") == 1);
}

TEST_CASE("migration 2 upgrades a version 1 database and keeps its data") {
  TempDir dir;
  const std::string path = dir.file("v1.db");
  const TimeMs now = wall_now();
  auto app = make_app(now, "kept-app");
  auto ep = make_endpoint(app.id, now, "kept-ep");
  ep.disabled = true;
  ep.disabled_reason = "by hand";
  auto m = make_message(app.id, now, "a.b");
  {
    // A database at version 1, made by migration 1's own SQL: a trigger stops migrate() when
    // it records version 2, which rolls migration 2 back.
    Connection c(path);
    c.exec(
        "CREATE TABLE schema_version (version INTEGER NOT NULL);"
        "CREATE TRIGGER stop_after_v1 BEFORE INSERT ON schema_version WHEN NEW.version > 1 "
        "BEGIN SELECT RAISE(ABORT, 'stop after version 1'); END;");
    CHECK_THROWS_AS(migrate(c), DbError);
    c.exec("DROP TRIGGER stop_after_v1");
    REQUIRE(scalar(c, "SELECT max(version) FROM schema_version") == 1);
    REQUIRE(scalar(c, "SELECT count(*) FROM schema_version") == 1);
    REQUIRE(scalar(c, "SELECT count(*) FROM sqlite_master WHERE name = 'endpoints'") == 1);
    REQUIRE_FALSE(has_column(c, "endpoints", "failing_since"));
    // Data written at version 1, through the v1 columns only.
    c.prepare(
         "INSERT INTO applications (id, uid, name, created_at, updated_at) "
         "VALUES (?, 'kept-app', 'v1', ?, ?)")
        .bind(1, app.id)
        .bind(2, now)
        .bind(3, now)
        .run();
    c.prepare(
         "INSERT INTO endpoints (id, app_id, uid, url, disabled, disabled_reason, "
         "created_at, updated_at) VALUES (?, ?, 'kept-ep', ?, 1, 'by hand', ?, ?)")
        .bind(1, ep.id)
        .bind(2, app.id)
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
        .bind(2, app.id)
        .bind(3, m.event_type)
        .bind(4, m.payload)
        .bind(5, now)
        .run();
  }
  Database db(path, 2);
  auto c = db.acquire();
  CHECK(scalar(*c, "SELECT max(version) FROM schema_version") == latest_schema_version());
  CHECK(scalar(*c, "SELECT count(*) FROM schema_version") == latest_schema_version());
  CHECK(has_column(*c, "endpoints", "failing_since"));

  CHECK(AppStore(*c).get_by_uid("kept-app").has_value());
  EndpointStore endpoints(*c);
  auto got = endpoints.get(app.id, "kept-ep");
  REQUIRE(got);
  CHECK(got->id == ep.id);
  CHECK(got->disabled);
  CHECK(got->disabled_reason == std::optional<std::string>("by hand"));
  CHECK_FALSE(got->failing_since.has_value());
  CHECK(endpoints.current_key(ep.id) == std::optional<std::string>("key-v1"));
  auto msg = MessageStore(*c).get(app.id, m.id);
  REQUIRE(msg);
  CHECK(msg->payload == m.payload);
  CHECK_FALSE(msg->payload_expired);

  // The new column works on the upgraded rows.
  CHECK(endpoints.note_failure(ep.id, now + 5) == std::optional<TimeMs>(now + 5));
  CHECK(endpoints.get(app.id, ep.id)->failing_since == std::optional<TimeMs>(now + 5));
}

TEST_CASE("EndpointStore note_failure keeps the start of a failing run; note_success ends it") {
  TestDb t;
  auto c = t.db->acquire();
  EndpointStore endpoints(*c);
  const TimeMs t0 = wall_now();
  auto app = make_app(t0, std::nullopt);
  AppStore(*c).insert(app);
  auto ep = make_endpoint(app.id, t0, std::nullopt);
  auto bystander = make_endpoint(app.id, t0, std::nullopt);
  endpoints.insert(ep, "k");
  endpoints.insert(bystander, "k2");
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

  endpoints.note_success(ep.id);
  CHECK_FALSE(failing_since(ep).has_value());
  endpoints.note_success(ep.id);  // no run: nothing to end, nothing breaks
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
}

TEST_CASE("EndpointStore disable flips only enabled endpoints") {
  TestDb t;
  auto c = t.db->acquire();
  EndpointStore endpoints(*c);
  const TimeMs t0 = wall_now();
  auto app = make_app(t0, std::nullopt);
  AppStore(*c).insert(app);
  auto ep = make_endpoint(app.id, t0, std::nullopt);
  auto bystander = make_endpoint(app.id, t0, std::nullopt);
  auto manual = make_endpoint(app.id, t0, std::nullopt);
  manual.disabled = true;
  manual.disabled_reason = "by hand";
  endpoints.insert(ep, "k");
  endpoints.insert(bystander, "k");
  endpoints.insert(manual, "k");
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
  TestDb t;
  auto c = t.db->acquire();
  EndpointStore endpoints(*c);
  const TimeMs t0 = wall_now();
  auto app = make_app(t0, std::nullopt);
  AppStore(*c).insert(app);
  auto ep = make_endpoint(app.id, t0, std::nullopt);
  endpoints.insert(ep, "k");
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

TEST_CASE("MessageStore expire_payloads respects the cutoff, the limit and the watermark") {
  TestDb t;
  auto c = t.db->acquire();
  MessageStore messages(*c);
  const TimeMs t0 = wall_now() - 3'600'000;
  auto app = make_app(wall_now(), std::nullopt);
  AppStore(*c).insert(app);
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
  TestDb t;
  auto c = t.db->acquire();
  const TimeMs now = wall_now();
  auto app = make_app(now, std::nullopt);
  AppStore(*c).insert(app);
  auto m = make_message(app.id, now, "a");
  MessageStore(*c).insert(m);
  auto got = MessageStore(*c).get(app.id, m.id);
  REQUIRE(got);
  CHECK_FALSE(got->payload_expired);
  CHECK(got->payload == m.payload);
  auto listed = MessageStore(*c).list(app.id, ListParams{}, {});
  REQUIRE(listed.items.size() == 1);
  CHECK_FALSE(listed.items[0].payload_expired);
}

TEST_CASE("AttemptStore purge deletes attempts made before the cutoff, oldest first, up to limit") {
  TestDb t;
  auto c = t.db->acquire();
  AttemptStore attempts(*c);
  const TimeMs t0 = wall_now() - 3'600'000;
  auto app = make_app(wall_now(), std::nullopt);
  AppStore(*c).insert(app);
  auto ep = make_endpoint(app.id, t0, std::nullopt);
  EndpointStore(*c).insert(ep, "k");
  auto m = make_message(app.id, t0, "a");
  MessageStore(*c).insert(m);
  auto d = make_delivery(m, ep.id, t0, t0);
  DeliveryStore(*c).insert(d);
  const TimeMs cutoff = t0 + 10'000;
  std::vector<Attempt> made;
  int n = 0;
  for (TimeMs at : {t0 + 2000, t0, t0 + 1000, cutoff, cutoff + 1000}) {
    auto a = make_attempt(d, at, DeliveryStatus::kFail, 500);
    a.id = id_at(kAttemptPrefix, at, ++n);
    attempts.insert(a);
    made.push_back(a);
  }
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
  CHECK(scalar(*c, "SELECT count(*) FROM attempts") == 2);
  // The message and its delivery stay.
  CHECK(MessageStore(*c).get(app.id, m.id).has_value());
  CHECK(DeliveryStore(*c).get(d.id).has_value());
}

TEST_CASE("DeliveryStore recover re-queues the endpoint's failed deliveries in [since, until)") {
  TestDb t;
  auto c = t.db->acquire();
  DeliveryStore deliveries(*c);
  const TimeMs t0 = wall_now();
  auto app = make_app(t0, std::nullopt);
  AppStore(*c).insert(app);
  auto ep = make_endpoint(app.id, t0, std::nullopt);
  auto other = make_endpoint(app.id, t0, std::nullopt);
  EndpointStore(*c).insert(ep, "k");
  EndpointStore(*c).insert(other, "k");
  auto m = make_message(app.id, t0, "a");
  MessageStore(*c).insert(m);
  const TimeMs since = t0 - 10'000;
  const TimeMs until = t0 - 1000;
  const auto add = [&](const Endpoint& e, TimeMs created, DeliveryStatus s, int attempts) {
    auto d = make_delivery(m, e.id, created, 0, s);
    d.attempts = attempts;
    deliveries.insert(d);
    return d;
  };
  auto before = add(ep, since - 1, DeliveryStatus::kFail, 4);
  auto first = add(ep, since, DeliveryStatus::kFail, 4);
  auto middle = add(ep, since + 5000, DeliveryStatus::kFail, 2);
  auto at_until = add(ep, until, DeliveryStatus::kFail, 4);
  auto succeeded = add(ep, since + 100, DeliveryStatus::kSuccess, 1);
  auto pending = add(ep, since + 200, DeliveryStatus::kPending, 1);
  auto elsewhere = add(other, since + 300, DeliveryStatus::kFail, 4);

  const TimeMs now = t0 + 5;
  CHECK(deliveries.recover(ep.id, since, until, now) == 2);
  for (const auto* d : {&first, &middle}) {
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
  for (const auto* d : {&before, &at_until, &succeeded, &pending, &elsewhere}) {
    CAPTURE(d->id);
    auto got = deliveries.get(d->id);
    REQUIRE(got);
    CHECK(got->status == d->status);
    CHECK(got->trigger == TriggerType::kScheduled);
    CHECK(got->updated_at == d->updated_at);
  }

  // Due now: the next claim takes exactly the recovered ones and the one already pending.
  std::vector<Delivery> claimed;
  {
    Transaction tx(*c);
    claimed = deliveries.claim(now, 1000, 10);
    tx.commit();
  }
  std::set<std::string> claimed_ids;
  for (const auto& d : claimed) claimed_ids.insert(d.id);
  CHECK(claimed_ids == std::set<std::string>{first.id, middle.id, pending.id});

  // Nothing failed is left in the range.
  CHECK(deliveries.recover(ep.id, since, until, now + 1) == 0);
  CHECK(deliveries.recover(other.id, since, until, now + 1) == 1);
  CHECK(deliveries.get(elsewhere.id)->status == DeliveryStatus::kPending);
}
