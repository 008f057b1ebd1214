#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace herald {

// Keyset pagination over an id-ordered list. `cursor` is an id: the page holds the items
// after it in the list's order, or, when `backwards`, the items before it.
struct ListParams {
  int limit = 50;
  std::optional<std::string> cursor;
  bool backwards = false;
  // Newest first (true) or oldest first, for lists that let the caller choose (applications,
  // endpoints: Svix's `order`); nullopt: the list's own order.
  std::optional<bool> descending;
};

template <typename T>
struct ListPage {
  std::vector<T> items;  // in the list's order
  bool done = true;      // no more items past the page in the direction read
};

// SQL pieces for keyset pagination on column `col` whose natural order is descending when
// `desc`, for the backends. `where` is " AND col > <placeholder>" or similar (empty without a
// cursor; the cursor is bound by the caller), `order` is " ORDER BY col ASC|DESC".
struct KeysetSql {
  std::string where;
  std::string order;
};
KeysetSql keyset_sql(const std::string& col, bool desc, const ListParams& p,
                     const std::string& placeholder = "?");

// Reads up to limit+1 rows into a page: drops the extra row (setting done = false) and
// reverses backwards pages into the list's order.
template <typename T>
ListPage<T> finish_page(std::vector<T> rows, const ListParams& p) {
  ListPage<T> page;
  page.done = static_cast<int>(rows.size()) <= p.limit;
  if (!page.done) rows.resize(static_cast<size_t>(p.limit));
  if (p.backwards) std::reverse(rows.begin(), rows.end());
  page.items = std::move(rows);
  return page;
}

// A page of the items of a keyset-paged list that `keep` accepts, read through as many pages
// of `fetch(ListParams)` as it takes to fill p.limit of them. `key(item)` is an item's cursor.
template <typename T, typename Fetch, typename Keep, typename Key>
ListPage<T> filtered_page(const ListParams& p, Fetch fetch, Keep keep, Key key) {
  ListPage<T> out;
  std::vector<T> kept;  // in reading order: backwards pages read from the cursor back
  ListParams q = p;
  for (;;) {
    ListPage<T> page = fetch(q);
    if (p.backwards) std::reverse(page.items.begin(), page.items.end());
    if (!page.items.empty()) q.cursor = key(page.items.back());
    for (auto& item : page.items) {
      if (keep(item)) kept.push_back(std::move(item));
    }
    if (static_cast<int>(kept.size()) > p.limit) {
      kept.resize(static_cast<size_t>(p.limit));
      out.done = false;
      break;
    }
    if (page.done || page.items.empty()) {
      out.done = true;
      break;
    }
  }
  if (p.backwards) std::reverse(kept.begin(), kept.end());
  out.items = std::move(kept);
  return out;
}

}  // namespace herald
