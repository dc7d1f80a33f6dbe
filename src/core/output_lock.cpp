// Advisory output locks (see output_lock.h).
#include "perpo/core/output_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "perpo/core/error.h"
#include "perpo/core/output_paths.h"

namespace perpo {
namespace fs = std::filesystem;

namespace {

/// The pid written in an existing lock file, or "" when it cannot be read.
std::string holder_pid(int fd) {
  char buffer[32] = {};
  const ssize_t got = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
  if (got <= 0) return "";
  std::string text(buffer, static_cast<std::size_t>(got));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

/// True when `path` still names the file open as `fd` (not removed or replaced since).
bool still_names(const fs::path& path, int fd) {
  struct stat by_path {
  }, by_fd{};
  if (::stat(path.c_str(), &by_path) != 0 || ::fstat(fd, &by_fd) != 0) return false;
  return by_path.st_dev == by_fd.st_dev && by_path.st_ino == by_fd.st_ino;
}

}  // namespace

OutputLock OutputLock::acquire(const fs::path& lock_path, const fs::path& target,
                               const std::string& what) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
      throw runtime_error("cannot lock the ", what, " ", target.string(), ": cannot open ",
                          lock_path.string(), ": ", std::strerror(errno))
          .hint("check that the folder is writable");
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int saved = errno;
      const std::string pid = holder_pid(fd);
      ::close(fd);
      if (saved == EWOULDBLOCK) {
        throw input_error("the ", what, " ", target.string(), " is in use by another perpo process",
                          pid.empty() ? std::string() : " (pid " + pid + ")")
            .hint("wait for it to finish, or choose another output");
      }
      throw runtime_error("cannot lock ", lock_path.string(), ": ", std::strerror(saved));
    }
    if (!still_names(lock_path, fd)) {  // its holder removed it while we opened it: again
      ::close(fd);
      continue;
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
      // The lock is held; the pid is only for others' messages.
    }
    OutputLock lock;
    lock.lock_path_ = lock_path;
    lock.fd_ = fd;
    return lock;
  }
  throw runtime_error("cannot lock the ", what, " ", target.string(), ": ", lock_path.string(),
                      " keeps being replaced");
}

OutputLock OutputLock::folder(const fs::path& dir, const std::string& what) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (!fs::is_directory(dir, error)) {
    throw input_error("the ", what, " ", dir.string(), " is not a folder");
  }
  return acquire(dir / ".perpo-lock", dir, what);
}

OutputLock OutputLock::file(const fs::path& file, const std::string& what) {
  std::error_code error;
  const fs::file_type type = fs::status(file, error).type();
  if (type != fs::file_type::not_found && type != fs::file_type::regular &&
      type != fs::file_type::directory) {
    return OutputLock();  // devices, FIFOs: written in place, not locked
  }
  // A folder that is replaced whole (export) is locked beside itself, like a file.
  const fs::path target = resolved_path(file);  // symlinks followed, "out/" -> "out"
  const fs::path folder = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  fs::create_directories(folder, error);
  return acquire(folder / ("." + target.filename().string() + ".perpo-lock"), file, what);
}

void OutputLock::release() {
  if (fd_ < 0) return;
  std::error_code error;
  if (still_names(lock_path_, fd_)) fs::remove(lock_path_, error);
  ::close(fd_);  // drops the flock
  fd_ = -1;
}

OutputLock::~OutputLock() { release(); }

OutputLock::OutputLock(OutputLock&& other) noexcept
    : lock_path_(std::move(other.lock_path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

OutputLock& OutputLock::operator=(OutputLock&& other) noexcept {
  if (this != &other) {
    release();
    lock_path_ = std::move(other.lock_path_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

}  // namespace perpo
