#include "db/pool.h"

#include "db/migrations.h"
#include "db/sealing.h"

namespace herald {

Database::Database(std::string path, int max_connections, std::shared_ptr<const SecretBox> box)
    : path_(std::move(path)),
      max_connections_(max_connections < 1 ? 1 : max_connections),
      box_(std::move(box)) {
  auto first = open_connection();
  migrate(*first);
  if (box_) adopt_master_key(*first);
  idle_.push_back(std::move(first));
  open_ = 1;
}

Database::Handle::~Handle() {
  if (conn_) db_->release(std::move(conn_));
}

Database::Handle Database::acquire() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_connections_; });
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return Handle(this, std::move(c));
  }
  ++open_;
  lock.unlock();
  try {
    return Handle(this, open_connection());
  } catch (...) {
    std::lock_guard relock(mu_);
    --open_;
    cv_.notify_one();
    throw;
  }
}

std::unique_ptr<Connection> Database::open_connection() {
  auto c = std::make_unique<Connection>(path_);
  c->set_secret_box(box_);
  c->set_write_lock(&write_mu_);
  return c;
}

void Database::release(std::unique_ptr<Connection> c) {
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(c));
  cv_.notify_one();
}

}  // namespace herald
