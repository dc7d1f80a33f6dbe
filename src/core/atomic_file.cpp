#include "perpo/core/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/core/signals.h"

namespace perpo {
namespace fs = std::filesystem;

namespace {
std::atomic<unsigned> g_counter{0};

constexpr const char* kTempTag = ".perpo-tmp-";

fs::path temp_name_for(const fs::path& target) {
  // Hidden, in the same folder (rename is atomic only within one file system), unique per process.
  std::string name = "." + target.filename().string() + kTempTag + std::to_string(::getpid()) +
                     "-" + std::to_string(g_counter.fetch_add(1));
  return target.parent_path() / name;
}

/// `path` with symlinks followed, also when the last one dangles (its target is then created).
fs::path follow_symlinks(const fs::path& path) {
  fs::path current = path;
  std::error_code error;
  for (int hops = 0; hops < 40 && fs::is_symlink(current, error); ++hops) {
    fs::path next = fs::read_symlink(current, error);
    if (error) break;
    current = next.is_absolute() ? next : current.parent_path() / next;
  }
  return current;
}

/// /dev/stdout, /dev/fd/N, /proc/self/fd/N: names of files opened by someone else (the shell).
bool is_special_path(const fs::path& path) {
  const std::string text = fs::absolute(path).lexically_normal().string();
  return text.rfind("/dev/", 0) == 0 || text.rfind("/proc/", 0) == 0;
}

/// N when `path` names an inherited descriptor: /dev/stdout (1), /dev/stderr (2), /dev/fd/N,
/// /proc/self/fd/N; else -1.
int descriptor_of(const fs::path& path) {
  const std::string text = path.lexically_normal().string();
  if (text == "/dev/stdout") return 1;
  if (text == "/dev/stderr") return 2;
  for (const std::string prefix : {"/dev/fd/", "/proc/self/fd/"}) {
    if (text.rfind(prefix, 0) != 0 || text.size() == prefix.size()) continue;
    int fd = 0;
    for (std::size_t i = prefix.size(); i < text.size(); ++i) {
      if (text[i] < '0' || text[i] > '9' || fd > 100000) return -1;
      fd = fd * 10 + (text[i] - '0');
    }
    return fd;
  }
  return -1;
}

/// The pid in a temp file name "<prefix><pid>-<k>" (both decimal, nothing after), or 0 for any
/// other name: a user's ".out.jsonl.tmp-2024" is not perpo's and is never swept.
pid_t pid_after(const std::string& name, const std::string& prefix) {
  if (name.rfind(prefix, 0) != 0) return 0;
  const std::size_t dash = name.find('-', prefix.size());
  if (dash == std::string::npos || dash == prefix.size() || dash + 1 == name.size()) return 0;
  auto digits = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      if (name[i] < '0' || name[i] > '9') return false;
    }
    return to - from <= 9;
  };
  if (!digits(prefix.size(), dash) || !digits(dash + 1, name.size())) return 0;
  return static_cast<pid_t>(std::stol(name.substr(prefix.size(), dash - prefix.size())));
}
}  // namespace

int remove_stale_temp_files(const fs::path& target) {
  const fs::path folder = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  const std::string name = target.filename().string();
  // Only perpo's own pattern ".<name>.perpo-tmp-<pid>-<k>": another name may be the user's.
  const std::string prefixes[] = {"." + name + kTempTag};
  int removed = 0;
  std::error_code error;
  for (fs::directory_iterator it(folder, error), end; !error && it != end; it.increment(error)) {
    const std::string entry = it->path().filename().string();
    for (const std::string& prefix : prefixes) {
      const pid_t pid = pid_after(entry, prefix);
      if (pid <= 0 || pid == ::getpid()) continue;
      if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // its writer may still run
      std::error_code remove_error;
      if (fs::remove(it->path(), remove_error)) {
        ++removed;
        PERPO_LOG_WARN("removed ", it->path().string(),
                       ", a temporary file left by an interrupted perpo (pid ", pid, ")");
      }
    }
  }
  return removed;
}

void fsync_path(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw runtime_error("cannot open ", path.string(), " to sync it: ", std::strerror(errno));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  // Some file systems refuse fsync on folders (EINVAL); the data itself was synced already.
  if (rc != 0 && saved != EINVAL) {
    throw runtime_error("fsync failed on ", path.string(), ": ", std::strerror(saved));
  }
}

AtomicFileWriter::AtomicFileWriter(fs::path target) : target_(std::move(target)) {
  std::error_code error;
  // The kernel follows the links here, also /proc's (/dev/stdout -> /proc/self/fd/1 -> a pipe).
  const fs::file_type type = fs::status(target_, error).type();
  if (const int fd = descriptor_of(target_); fd >= 0 && type != fs::file_type::not_found) {
    fd_ = fd;
    return;
  }
  if (type == fs::file_type::fifo || type == fs::file_type::character ||
      (type == fs::file_type::regular && is_special_path(target_))) {
    // Never replaced by a regular file: written in place (a pipe, /dev/null, a terminal, the
    // file a shell redirected /dev/stdout to), appending so nothing written before is cut.
    out_.open(target_, std::ios::binary | std::ios::app);
    if (!out_) throw runtime_error("cannot write ", target_.string(), ": ", std::strerror(errno));
    return;
  }
  if (type != fs::file_type::not_found && type != fs::file_type::regular) {
    throw input_error("cannot write ", target_.string(), ": it is ",
                      type == fs::file_type::directory ? "a folder" : "not a regular file",
                      " (perpo writes regular files, FIFOs and character devices only)")
        .hint("choose another output path");
  }
  write_to_ = follow_symlinks(target_);
  fs::path parent = write_to_.parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, error);
    if (error) throw runtime_error("cannot create folder ", parent.string(), ": ", error.message());
  }
  remove_stale_temp_files(write_to_);
  temp_ = temp_name_for(write_to_);
  register_temp_path(temp_);
  out_.open(temp_, std::ios::binary | std::ios::trunc);
  if (!out_) {
    const int saved = errno;
    unregister_temp_path(temp_);
    throw runtime_error("cannot write ", temp_.string(), ": ", std::strerror(saved))
        .hint("check that the folder exists and is writable");
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_ && !temp_.empty()) {
    out_.close();
    std::error_code ec;
    fs::remove(temp_, ec);
  }
  if (!temp_.empty()) unregister_temp_path(temp_);
}

void AtomicFileWriter::commit() {
  PERPO_CHECK(!committed_, "AtomicFileWriter::commit called twice for ", target_.string());
  if (fd_ >= 0) {
    write_to_descriptor();
    committed_ = true;
    return;
  }
  out_.flush();
  if (!out_) throw runtime_error("writing ", target_.string(), " failed (disk full?)");
  out_.close();
  if (!out_) throw runtime_error("writing ", target_.string(), " failed (disk full?)");
  if (temp_.empty()) {  // written in place
    committed_ = true;
    return;
  }
  fsync_path(temp_);
  std::error_code ec;
  fs::rename(temp_, write_to_, ec);
  if (ec)
    throw runtime_error("cannot rename ", temp_.string(), " to ", write_to_.string(), ": ",
                        ec.message());
  committed_ = true;
  unregister_temp_path(temp_);
  fs::path parent = write_to_.parent_path();
  fsync_path(parent.empty() ? fs::path(".") : parent);
}

void AtomicFileWriter::write_to_descriptor() {
  const std::string bytes = buffer_.str();
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t wrote = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) {
      throw runtime_error("writing ", target_.string(), " failed: ", std::strerror(errno));
    }
    done += static_cast<std::size_t>(wrote);
  }
}

void write_file_atomic(const fs::path& path, std::string_view content) {
  AtomicFileWriter writer(path);
  writer.stream().write(content.data(), static_cast<std::streamsize>(content.size()));
  writer.commit();
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw input_error("cannot read ", path.string(), ": ",
                      fs::exists(path) ? std::strerror(errno) : "no such file");
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace perpo
