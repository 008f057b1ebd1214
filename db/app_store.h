#pragma once

#include <optional>
#include <string>

#include "core/types.h"
#include "db/list.h"

namespace herald {

class Connection;

// The applications table.
class AppStore {
 public:
  explicit AppStore(Connection& c) : c_(c) {}

  // Inserts `app`; throws DbError (is_constraint) when its uid is taken.
  void insert(const Application& app);
  // By id, or by uid when `key` is not an app id.
  std::optional<Application> get(const std::string& key);
  std::optional<Application> get_by_uid(const std::string& uid);
  // Oldest first.
  ListPage<Application> list(const ListParams& p);
  // Writes every field but id and created_at; false if no such app.
  bool update(const Application& app);
  // Deletes the app and, by cascade, everything under it; false if no such app.
  bool remove(const std::string& id);

 private:
  Connection& c_;
};

}  // namespace herald
