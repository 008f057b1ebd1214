#include "db/copy.h"

#include <vector>

#include "db/app_store.h"
#include "db/attempt_store.h"
#include "db/database.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/event_type_store.h"
#include "db/message_store.h"
#include "db/token_store.h"

namespace herald {
namespace {

constexpr int kPage = 250;

// Calls `each` for every item of a keyset-paged list, page by page.
template <typename T, typename ListFn, typename EachFn>
void for_each_page(ListFn list, EachFn each) {
  ListParams p;
  p.limit = kPage;
  for (;;) {
    ListPage<T> page = list(p);
    if (!page.items.empty()) each(page.items);
    if (page.done || page.items.empty()) return;
    p.cursor = page.items.back().id;
  }
}

}  // namespace

CopyResult copy_store(Database& from, Database& to,
                      const std::function<void(const std::string&)>& progress) {
  CopyResult result;
  auto src = from.session();
  auto dst = to.session();

  {
    // Event types are keyed by name.
    ListParams p;
    p.limit = kPage;
    for (;;) {
      auto page = src->event_types().list(p, true);
      for (const auto& et : page.items) {
        if (!dst->event_types().get(et.name)) dst->event_types().insert(et);
      }
      if (page.done || page.items.empty()) break;
      p.cursor = page.items.back().name;
    }
  }

  std::vector<Application> apps;
  for_each_page<Application>([&](const ListParams& p) { return src->apps().list(p); },
                             [&](const std::vector<Application>& page) {
                               for (const auto& a : page) apps.push_back(a);
                             });
  for (const auto& app : apps) {
    dst->begin();
    if (!dst->apps().get(app.id)) dst->apps().insert(app);
    for_each_page<Endpoint>([&](const ListParams& p) { return src->endpoints().list(app.id, p); },
                            [&](const std::vector<Endpoint>& page) {
                              for (const auto& ep : page) {
                                if (dst->endpoints().get(app.id, ep.id)) continue;
                                dst->endpoints().import_endpoint(
                                    ep, src->endpoints().stored_keys(ep.id));
                              }
                            });
    dst->commit();
  }
  progress("copied " + std::to_string(apps.size()) + " applications with their endpoints");

  for (const auto& t : src->tokens().list()) {
    if (!dst->tokens().find_by_hash(t.hash)) dst->tokens().insert(t);
  }

  for (const auto& app : apps) {
    for_each_page<Message>(
        [&](const ListParams& p) { return src->messages().list(app.id, p, MessageFilter{}); },
        [&](const std::vector<Message>& page) {
          std::vector<std::string> ids;
          ids.reserve(page.size());
          for (const auto& m : page) ids.push_back(m.id);
          const auto present = dst->messages().payloads(ids);
          for (const auto& m : page) {
            if (present.contains(m.id)) {
              ++result.messages_present;
              continue;
            }
            dst->begin();
            dst->messages().insert(m);
            for (const auto& d : src->deliveries().for_message(m.id)) dst->deliveries().insert(d);
            for_each_page<Attempt>(
                [&](const ListParams& p) {
                  return src->attempts().list_by_message(app.id, m.id, p, AttemptFilter{});
                },
                [&](const std::vector<Attempt>& attempts) { dst->attempts().insert(attempts); });
            dst->commit();
            if (++result.messages_copied % 10000 == 0) {
              progress("copied " + std::to_string(result.messages_copied) + " messages");
            }
          }
        });
  }
  result.source = src->inventory();
  result.target = dst->inventory();
  return result;
}

}  // namespace herald
