#pragma once

#include <string>

#include "db/errors.h"

namespace herald::sqlite {

// Another process holds the database (see FileLock).
class DatabaseInUse : public DbError {
 public:
  DatabaseInUse(const std::string& what, long pid) : DbError(Kind::kOther, what), pid_(pid) {}
  // The holder's process id as it wrote it; 0 if unknown.
  long pid() const { return pid_; }

 private:
  long pid_;
};

// An exclusive hold of one SQLite database for this process: an flock on "<file>.lock" beside
// it, naming the holder's pid. The kernel drops the lock with the process, however it ends, so
// a kill -9 leaves nothing to clean up. Two holds on one database, from two processes or one,
// exclude each other.
class FileLock {
 public:
  // Takes the hold of the database at `db_path` (its canonical path: another spelling of the
  // same file finds the same lock). Throws DatabaseInUse when another holds it, DbError when
  // the lock file cannot be made.
  explicit FileLock(const std::string& db_path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace herald::sqlite
