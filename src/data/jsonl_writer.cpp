// JsonlWriter: whole-line appends (see jsonl_writer.h).
#include "perpo/data/jsonl_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "perpo/core/error.h"
#include "perpo/core/log.h"

namespace perpo {

namespace fs = std::filesystem;

namespace {

// True when `bytes` is one whole JSON object (a record that only lacks its newline).
bool is_complete_record(const std::string& bytes) {
  const std::size_t first = bytes.find_first_not_of(" \t\r");
  return first != std::string::npos && bytes[first] == '{' && nlohmann::json::accept(bytes);
}

// Repairs the end of `fd` so appends start on a fresh line: a last line without its newline is
// completed with one when it is a whole JSON object, and cut off otherwise (a partial write).
// Returns how many bytes were cut.
std::size_t repair_last_line(int fd, const fs::path& path) {
  const off_t size = ::lseek(fd, 0, SEEK_END);
  if (size <= 0) return 0;
  off_t end = size;
  off_t keep = 0;  // bytes up to and including the last '\n'
  char buffer[4096];
  while (end > 0 && keep == 0) {
    const off_t start =
        end > static_cast<off_t>(sizeof buffer) ? end - static_cast<off_t>(sizeof buffer) : 0;
    const ssize_t got = ::pread(fd, buffer, end - start, start);
    PERPO_CHECK(got == end - start, "cannot read ", path.string(), ": ", std::strerror(errno));
    for (ssize_t i = got - 1; i >= 0; --i) {
      if (buffer[i] == '\n') {
        keep = start + i + 1;
        break;
      }
    }
    end = start;
  }
  if (keep == size) return 0;
  const off_t tail_size = size - keep;
  if (tail_size <= (off_t{64} << 20)) {
    std::string tail(static_cast<std::size_t>(tail_size), '\0');
    const ssize_t got = ::pread(fd, tail.data(), tail.size(), keep);
    PERPO_CHECK(got == tail_size, "cannot read ", path.string(), ": ", std::strerror(errno));
    if (is_complete_record(tail)) {
      PERPO_CHECK(::write(fd, "\n", 1) == 1, "cannot append to ", path.string(), ": ",
                  std::strerror(errno));
      PERPO_LOG_INFO(path.string(), " ended in a complete record without a newline; added it");
      return 0;
    }
  }
  PERPO_CHECK(::ftruncate(fd, keep) == 0, "cannot truncate ", path.string(), ": ",
              std::strerror(errno));
  return static_cast<std::size_t>(tail_size);
}

}  // namespace

JsonlWriter::JsonlWriter(const fs::path& path, bool truncate, bool sync_each_line)
    : path_(path), sync_each_line_(sync_each_line) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  const int flags = O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);
  fd_ = ::open(path.c_str(), flags, 0644);
  if (fd_ < 0) {
    throw runtime_error("cannot open ", path.string(), " for appending: ", std::strerror(errno));
  }
  repaired_bytes_ = repair_last_line(fd_, path);
  if (repaired_bytes_ > 0) {
    PERPO_LOG_WARN(path.string(), " ended in a partial line (", repaired_bytes_,
                   " bytes, left by an interrupted write); cut it off before appending");
  }
}

JsonlWriter::~JsonlWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void JsonlWriter::write(const nlohmann::json& record) {
  write_line(record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void JsonlWriter::write_line(std::string_view line) {
  PERPO_CHECK(line.find('\n') == std::string_view::npos, "a JSONL line must not contain a newline");
  std::string bytes(line);
  bytes += '\n';
  // One write(2) normally takes the whole line; a short write (full disk, signal) is finished in
  // further calls and, if it cannot be, the next open cuts the partial line off.
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t wrote = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    PERPO_CHECK(wrote > 0, "cannot append to ", path_.string(), ": ", std::strerror(errno));
    done += static_cast<std::size_t>(wrote);
  }
  if (sync_each_line_) {
    PERPO_CHECK(::fsync(fd_) == 0, "cannot fsync ", path_.string(), ": ", std::strerror(errno));
  }
  ++lines_written_;
}

}  // namespace perpo
