// herald_seed: fills a stopped herald's database with a backlog for the benchmark.
//
//   herald_seed --db PATH --app APP_ID --deliveries N [--due-in-ms MS]
//
// Writes N / (enabled endpoints of the app) messages, each with one pending delivery per
// endpoint, due now + MS (default 0: due at once), through herald's own stores, 5,000
// messages per transaction. Prints one JSON line: {"messages":m,"deliveries":d,"seconds":s}.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/ids.h"
#include "db/database.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/message_store.h"
#include "db/session.h"

int main(int argc, char** argv) {
  std::string db_path, app_id;
  long long deliveries = 0, due_in_ms = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--db") {
      db_path = value;
    } else if (flag == "--app") {
      app_id = value;
    } else if (flag == "--deliveries") {
      deliveries = std::stoll(value);
    } else if (flag == "--due-in-ms") {
      due_in_ms = std::stoll(value);
    } else {
      std::cerr << "herald_seed: unknown flag " << flag << "\n";
      return 2;
    }
  }
  if (db_path.empty() || app_id.empty() || deliveries <= 0) {
    std::cerr << "herald_seed: needs --db, --app and --deliveries\n";
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  herald::SystemClock clock;
  auto db = herald::open_database(db_path, herald::DatabaseOptions{1, nullptr});
  auto session = db->session();
  auto endpoints = session->endpoints().enabled_for_app(app_id);
  if (endpoints.empty()) {
    std::cerr << "herald_seed: the app has no enabled endpoint\n";
    return 1;
  }
  const long long messages = (deliveries + static_cast<long long>(endpoints.size()) - 1) /
                             static_cast<long long>(endpoints.size());
  long long written = 0, made = 0;
  const std::string payload =
      R"({"type":"invoice.paid","data":{"id":"in_backlog","amount":4200,"currency":"usd"}})";
  while (made < messages) {
    session->begin();
    herald::MessageStore& ms = session->messages();
    herald::DeliveryStore& ds = session->deliveries();
    for (int i = 0; i < 5000 && made < messages; ++i, ++made) {
      const herald::TimeMs now = clock.now_ms();
      herald::Message m;
      m.id = herald::new_id(herald::kMessagePrefix, now);
      m.app_id = app_id;
      m.event_type = "invoice.paid";
      m.payload = payload;
      m.timestamp = now;
      ms.insert(m);
      for (const auto& ep : endpoints) {
        if (written >= deliveries) break;
        herald::Delivery d;
        d.id = herald::new_id(herald::kDeliveryPrefix, now);
        d.app_id = app_id;
        d.msg_id = m.id;
        d.endpoint_id = ep.id;
        d.next_attempt_at = now + due_in_ms;
        d.created_at = d.updated_at = now;
        ds.insert(d);
        ++written;
      }
    }
    session->commit();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"messages\":%lld,\"deliveries\":%lld,\"seconds\":%.2f}\n", made, written, seconds);
  return 0;
}
