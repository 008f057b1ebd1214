#pragma once

#include <stdexcept>
#include <string>

namespace herald {

// An infrastructure failure or broken invariant in the storage layer, from either backend.
class DbError : public std::runtime_error {
 public:
  enum class Kind {
    kOther,
    kConstraint,   // a unique or foreign key was violated: the caller's input conflicts
    kUnavailable,  // the store cannot be reached or cannot write now (connection lost, disk
                   // full, server restarting): the request may succeed if tried again later
  };
  DbError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const { return kind_; }
  bool is_constraint() const { return kind_ == Kind::kConstraint; }
  bool is_unavailable() const { return kind_ == Kind::kUnavailable; }

 private:
  Kind kind_;
};

}  // namespace herald
