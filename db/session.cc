#include "db/session.h"

#include <stdexcept>

namespace herald {

void Session::begin() {
  if (in_transaction_) throw std::logic_error("Session::begin: a transaction is open");
  do_begin();
  in_transaction_ = true;
}

void Session::commit() {
  if (!in_transaction_) throw std::logic_error("Session::commit: no transaction is open");
  try {
    do_commit();
  } catch (...) {
    rollback();
    throw;
  }
  in_transaction_ = false;
  savepoints_.clear();
  std::vector<Outcome> done;
  done.swap(outcomes_);
  for (auto& o : done) {
    if (o.committed) o.committed();
  }
}

void Session::rollback() noexcept {
  if (!in_transaction_) return;
  do_rollback();
  in_transaction_ = false;
  savepoints_.clear();
  unwind(0);
}

void Session::savepoint() {
  if (!in_transaction_) throw std::logic_error("Session::savepoint: no transaction is open");
  do_savepoint(savepoints_.size());
  savepoints_.push_back(outcomes_.size());
}

void Session::release_savepoint() {
  if (savepoints_.empty()) throw std::logic_error("Session::release_savepoint: none is open");
  do_release_savepoint(savepoints_.size() - 1);
  savepoints_.pop_back();
}

void Session::rollback_to_savepoint() {
  if (savepoints_.empty()) throw std::logic_error("Session::rollback_to_savepoint: none is open");
  do_rollback_to_savepoint(savepoints_.size() - 1);
  const size_t from = savepoints_.back();
  savepoints_.pop_back();
  unwind(from);
}

void Session::on_outcome(std::function<void()> committed, std::function<void()> rolled_back) {
  if (!in_transaction_) throw std::logic_error("Session::on_outcome: no transaction is open");
  outcomes_.push_back(Outcome{std::move(committed), std::move(rolled_back)});
}

void Session::unwind(size_t from) noexcept {
  for (size_t i = outcomes_.size(); i > from; --i) {
    if (outcomes_[i - 1].rolled_back) outcomes_[i - 1].rolled_back();
  }
  outcomes_.resize(from);
}

}  // namespace herald
