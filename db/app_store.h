#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"
#include "db/list.h"

namespace herald {

// Applications. Reached through a Session; reads and writes happen on its connection.
class AppStore {
 public:
  virtual ~AppStore() = default;

  // Inserts `app`; throws DbError (is_constraint) when its uid is taken.
  virtual void insert(const Application& app) = 0;
  // By id, or by uid when `key` is not an app id.
  virtual std::optional<Application> get(const std::string& key) = 0;
  virtual std::optional<Application> get_by_uid(const std::string& uid) = 0;
  // Oldest first.
  virtual ListPage<Application> list(const ListParams& p) = 0;
  // Writes every field but id and created_at; false if no such app.
  virtual bool update(const Application& app) = 0;
  // The endpoints_version of each of `app_ids` that exists.
  virtual std::map<std::string, int64_t> endpoint_versions(
      const std::vector<std::string>& app_ids) = 0;
  // Deletes the app and everything under it (endpoints, messages, deliveries, attempts,
  // tokens); false if no such app.
  virtual bool remove(const std::string& id) = 0;
};

}  // namespace herald
