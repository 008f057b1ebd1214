#include "db/database.h"

#include "db/postgres/database.h"
#include "db/queue_store.h"
#include "db/sqlite/database.h"

namespace herald {

void Database::wake_listener() const {
  std::shared_lock lock(listener_mu_);
  if (listener_ != nullptr) listener_->wake();
}

std::unique_ptr<Database> open_database(const std::string& location,
                                        const DatabaseOptions& options) {
  if (is_postgres_uri(location)) return std::make_unique<pg::PgDatabase>(location, options);
  return std::make_unique<sqlite::SqliteDatabase>(location, options);
}

}  // namespace herald
