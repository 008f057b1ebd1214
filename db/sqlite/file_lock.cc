#include "db/sqlite/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace herald::sqlite {
namespace {

std::string lock_path_of(const std::string& db_path) {
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(db_path, ec);
  return (ec ? db_path : canonical.string()) + ".lock";
}

// The pid the holder wrote, or 0.
long read_pid(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  char* end = nullptr;
  const long pid = std::strtol(buf, &end, 10);
  return pid > 0 ? pid : 0;
}

}  // namespace

FileLock::FileLock(const std::string& db_path) : path_(lock_path_of(db_path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    throw DbError(DbError::Kind::kOther,
                  "cannot create the lock file " + path_ + ": " + std::strerror(errno));
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const long pid = err == EWOULDBLOCK ? read_pid(fd_) : 0;
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) {
      throw DbError(DbError::Kind::kOther, "cannot lock " + path_ + ": " + std::strerror(err));
    }
    throw DatabaseInUse("it is in use by another herald process" +
                            (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()) +
                            "; stop it first, or give this one another database",
                        pid);
  }
  // Ours now: say whose it is, for the next one that finds it taken.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 ||
      ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw DbError(DbError::Kind::kOther, "cannot write " + path_ + ": " + std::strerror(err));
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays (unlinking it would race)
}

}  // namespace herald::sqlite
