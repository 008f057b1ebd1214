#pragma once

#include <cstddef>
#include <functional>
#include <vector>

namespace herald {

class AppStore;
class AttemptStore;
class DeliveryStore;
class EndpointStore;
class EventTypeStore;
class IdempotencyStore;
class MessageStore;
class QueueStore;
class SharedLimitStore;
class TaskStore;
class TokenStore;
struct Inventory;

// A unit of work: one connection to the database, held exclusively until the session is
// destroyed, and the stores that read and write on it. Without a transaction each statement
// commits on its own; between begin() and commit() everything the stores do commits or rolls
// back together. Destroying a session with a transaction open rolls it back. Not
// thread-safe: one thread at a time.
class Session {
 public:
  Session() = default;
  virtual ~Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  virtual AppStore& apps() = 0;
  virtual EndpointStore& endpoints() = 0;
  virtual EventTypeStore& event_types() = 0;
  virtual MessageStore& messages() = 0;
  virtual DeliveryStore& deliveries() = 0;
  virtual AttemptStore& attempts() = 0;
  virtual TokenStore& tokens() = 0;
  virtual IdempotencyStore& idempotency() = 0;
  virtual QueueStore& queue() = 0;
  virtual TaskStore& tasks() = 0;
  // Limits held across processes; null when the database's queue is one process's own.
  virtual SharedLimitStore* shared_limits() = 0;
  // How many rows of each kind the store holds.
  virtual Inventory inventory() = 0;

  // Opens a write transaction. REQUIRES: none open.
  void begin();
  // Makes the transaction durable, then runs its after-commit actions. If the commit fails
  // the transaction is rolled back (its on-rollback actions run) and the error thrown.
  void commit();
  // Undoes the transaction, if one is open, and runs its on-rollback actions. Never throws.
  void rollback() noexcept;
  bool in_transaction() const { return in_transaction_; }

  // Savepoints nest inside a transaction: rollback_to_savepoint() undoes what happened since
  // the matching savepoint() (running the on-rollback actions registered since) and ends it;
  // release_savepoint() ends it, keeping its work and its actions for the transaction.
  void savepoint();
  void release_savepoint();
  void rollback_to_savepoint();

  // Registers what to do once the current transaction's outcome is known: `committed` after
  // it commits, `rolled_back` (may be empty) if it, or the savepoint open now, rolls back.
  // Actions must not throw. REQUIRES: a transaction.
  void on_outcome(std::function<void()> committed, std::function<void()> rolled_back);

 protected:
  // The backend's statements. Each throws DbError.
  virtual void do_begin() = 0;
  virtual void do_commit() = 0;
  virtual void do_rollback() noexcept = 0;
  virtual void do_savepoint(size_t depth) = 0;
  virtual void do_release_savepoint(size_t depth) = 0;
  virtual void do_rollback_to_savepoint(size_t depth) = 0;
  // Derived destructors call this first: rolls back what is open.
  void end_session() noexcept { rollback(); }

 private:
  struct Outcome {
    std::function<void()> committed;
    std::function<void()> rolled_back;
  };
  // Runs the on-rollback actions registered from `from` on, and drops them.
  void unwind(size_t from) noexcept;

  bool in_transaction_ = false;
  std::vector<Outcome> outcomes_;
  std::vector<size_t> savepoints_;  // outcomes_.size() when each open savepoint began
};

}  // namespace herald
