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

}  // namespace herald
