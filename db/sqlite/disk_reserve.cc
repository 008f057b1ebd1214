#include "db/sqlite/disk_reserve.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

namespace herald::sqlite {

namespace {

constexpr auto kInterval = std::chrono::milliseconds(200);

// Bytes an unprivileged writer may still use on the filesystem holding `path`; nullopt when
// it cannot be told.
std::optional<uint64_t> free_bytes(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) return std::nullopt;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

DiskReserve::DiskReserve(std::string path, uint64_t bytes) : path_(std::move(path)), bytes_(bytes) {
  {
    std::lock_guard lock(mu_);
    struct stat st {};
    have_ballast_ = ::stat(path_.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) >= bytes_;
  }
  check();
  thread_ = std::thread([this] { run(); });
}

DiskReserve::~DiskReserve() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void DiskReserve::run() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, kInterval, [this] { return stop_; })) {
    lock.unlock();
    check();
    lock.lock();
  }
}

bool DiskReserve::make_ballast() {
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes_));
  const bool ok = rc == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) ::unlink(path_.c_str());
  return ok;
}

void DiskReserve::check() {
  std::lock_guard lock(mu_);
  const auto free = free_bytes(directory_of(path_));
  if (!free) return;
  if (!paused_) {
    if (have_ballast_ && *free >= bytes_) return;  // the usual case
    if (!have_ballast_ && *free >= 2 * bytes_ && make_ballast()) {
      have_ballast_ = true;
      return;
    }
    // Less than the reserve is left (or there never was room for it): its space goes to
    // recording what was accepted, and intake waits.
    if (have_ballast_) ::unlink(path_.c_str());
    have_ballast_ = false;
    paused_ = true;
    spdlog::error(
        "the disk holding {} is nearly full ({} bytes free): new messages are refused until "
        "space is freed; accepted ones are still delivered",
        path_, *free);
    return;
  }
  if (*free >= 2 * bytes_ && make_ballast()) {
    have_ballast_ = true;
    paused_ = false;
    spdlog::warn("space is back beside {}: new messages are taken again", path_);
  }
}

}  // namespace herald::sqlite
