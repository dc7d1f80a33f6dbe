// read_input_file (see input_file.h).
#include "perpo/core/input_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "perpo/core/error.h"

namespace perpo {
namespace fs = std::filesystem;

namespace {

std::string size_text(std::uint64_t bytes) {
  return bytes % (1u << 30) == 0 ? std::to_string(bytes >> 30) + " GiB"
                                 : std::to_string(bytes) + " bytes";
}

}  // namespace

std::string describe_file_type(fs::file_type type) {
  switch (type) {
    case fs::file_type::directory:
      return "a folder";
    case fs::file_type::regular:
      return "a regular file";
    case fs::file_type::fifo:
      return "a FIFO";
    case fs::file_type::character:
      return "a character device";
    case fs::file_type::block:
      return "a block device";
    case fs::file_type::socket:
      return "a socket";
    default:
      return "not a regular file";
  }
}

std::string read_input_file(const fs::path& path, std::uint64_t max_bytes) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);  // follows symlinks (/dev/fd/63)
  const fs::file_type type = status.type();
  if (type == fs::file_type::not_found) {
    throw input_error("cannot read ", path.string(), ": no such file").hint("check the path");
  }
  const bool regular = type == fs::file_type::regular;
  if (!regular && type != fs::file_type::fifo) {
    throw input_error("cannot read ", path.string(), ": it is ", describe_file_type(type),
                      "; perpo reads regular files, FIFOs and pipes")
        .hint("pass the file that holds the data");
  }
  if (regular) {
    const std::uintmax_t size = fs::file_size(path, error);
    if (!error && size > max_bytes) {
      throw input_error(path.string(), " has ", size, " bytes, more than the ",
                        size_text(max_bytes), " perpo reads at once");
    }
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw input_error("cannot read ", path.string(), ": ", std::strerror(errno))
        .hint("check that the file is readable");
  }
  std::string text;
  if (regular) text.reserve(static_cast<std::size_t>(fs::file_size(path, error)));
  char buffer[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int saved = errno;
      ::close(fd);
      throw runtime_error("reading ", path.string(), " failed: ", std::strerror(saved));
    }
    if (got == 0) break;
    if (text.size() + static_cast<std::size_t>(got) > max_bytes) {
      ::close(fd);
      throw input_error(path.string(), " holds more than the ", size_text(max_bytes),
                        " perpo reads at once");
    }
    text.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(fd);
  return text;
}

}  // namespace perpo
