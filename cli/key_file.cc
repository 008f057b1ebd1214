#include "cli/key_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/encoding.h"
#include "core/secret_box.h"

namespace herald {
namespace {

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting the error close() gives.
  bool close() {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0;
  }

 private:
  int fd_;
};

std::string errno_text() {
  return std::strerror(errno);
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool fsync_dir(const std::string& path, std::string* error) {
  const std::string dir = dir_of(path);
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) {
    *error = "cannot sync directory " + dir + ": " + errno_text();
    return false;
  }
  return true;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

std::optional<std::string> read_key_file(const std::string& path, bool* missing,
                                         std::string* error) {
  *missing = false;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    *missing = errno == ENOENT;
    *error = "cannot read master key file " + path + ": " + errno_text();
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    *error = "cannot stat master key file " + path + ": " + errno_text();
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = "master key file " + path + " is not a regular file";
    return std::nullopt;
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    *error = "master key file " + path + " has mode " + mode +
             ", open to group or others; run chmod 600 " + path;
    return std::nullopt;
  }
  std::string text(128, '\0');
  size_t used = 0;
  for (;;) {
    const ssize_t n = ::read(fd.get(), text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = "cannot read master key file " + path + ": " + errno_text();
      return std::nullopt;
    }
    if (n == 0 || (used += static_cast<size_t>(n)) == text.size()) break;
  }
  text.resize(used);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  auto key = base64_decode(text);
  if (!key || key->size() != SecretBox::kKeySize) {
    *error = "master key file " + path + " does not hold base64 of a 32-byte key";
    return std::nullopt;
  }
  return key;
}

bool create_key_file(const std::string& path, std::string_view key, std::string* error) {
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) {
    *error = "cannot create master key file " + tmp + ": " + errno_text();
    return false;
  }
  std::string why;
  if (::fchmod(fd.get(), 0600) != 0 ||  // whatever the umask
      !write_all(fd.get(), base64_encode(key) + "\n") || ::fsync(fd.get()) != 0) {
    why = errno_text();
  }
  if (!fd.close() && why.empty()) why = errno_text();
  if (!why.empty()) {
    ::unlink(tmp.c_str());
    *error = "cannot write master key file " + tmp + ": " + why;
    return false;
  }
  // link() fails if `path` exists: the key file appears whole, and only once.
  const bool linked = ::link(tmp.c_str(), path.c_str()) == 0;
  const std::string link_why = errno_text();
  ::unlink(tmp.c_str());
  if (!linked) {
    *error = "cannot create master key file " + path + ": " + link_why;
    return false;
  }
  return fsync_dir(path, error);
}

bool replace_key_file(const std::string& from, const std::string& to, std::string* error) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    *error = "cannot rename " + from + " to " + to + ": " + errno_text();
    return false;
  }
  return fsync_dir(to, error);
}

bool remove_key_file(const std::string& path, std::string* error) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    *error = "cannot remove " + path + ": " + errno_text();
    return false;
  }
  return fsync_dir(path, error);
}

}  // namespace herald
