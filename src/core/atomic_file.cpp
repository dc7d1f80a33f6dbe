#include "perpo/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "perpo/core/error.h"

namespace perpo {
namespace fs = std::filesystem;

namespace {
std::atomic<unsigned> g_counter{0};

fs::path temp_name_for(const fs::path& target) {
  // Hidden, in the same folder (rename is atomic only within one file system), unique per process.
  std::string name = "." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                     std::to_string(g_counter.fetch_add(1));
  return target.parent_path() / name;
}
}  // namespace

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
  fs::path parent = target_.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) throw runtime_error("cannot create folder ", parent.string(), ": ", ec.message());
  }
  temp_ = temp_name_for(target_);
  out_.open(temp_, std::ios::binary | std::ios::trunc);
  if (!out_) {
    throw runtime_error("cannot write ", temp_.string(), ": ", std::strerror(errno))
        .hint("check that the folder exists and is writable");
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) {
    out_.close();
    std::error_code ec;
    fs::remove(temp_, ec);
  }
}

void AtomicFileWriter::commit() {
  PERPO_CHECK(!committed_, "AtomicFileWriter::commit called twice for ", target_.string());
  out_.flush();
  if (!out_) throw runtime_error("writing ", target_.string(), " failed (disk full?)");
  out_.close();
  fsync_path(temp_);
  std::error_code ec;
  fs::rename(temp_, target_, ec);
  if (ec)
    throw runtime_error("cannot rename ", temp_.string(), " to ", target_.string(), ": ",
                        ec.message());
  committed_ = true;
  fs::path parent = target_.parent_path();
  fsync_path(parent.empty() ? fs::path(".") : parent);
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
