// Atomic file writes: a file is either its old complete self or its new complete self, never
// half-written, whatever happens in between (crash, kill, full disk). The bytes go to a temporary
// file in the same folder, which is fsync'ed and then renamed over the target; the folder is
// fsync'ed too so the rename survives a power loss.
//
//   perpo::write_file_atomic("run/metrics.json", json_text);
//
//   perpo::AtomicFileWriter out("run/predictions.jsonl");   // streaming form
//   out.stream() << line << '\n';
//   out.commit();            // without commit() the target is left untouched
//
// The temporary file is named ".<name>.perpo-tmp-<pid>-<k>" beside the target. It is removed when
// the writer is destroyed without commit(), and when SIGINT / SIGTERM end perpo (signals.h). A
// temporary file left by a killed perpo (SIGKILL, power loss) is removed by the next writer of the
// same target once its process is gone, with a warning naming it.
//
// Targets that are not regular files (output_paths.h): a symlink is followed (the file it points
// to is replaced, the link is kept); a FIFO or character device (/dev/null, /dev/stdout) is written
// in place (appending), never replaced, and so is a file named under /dev or /proc; /dev/stdout,
// /dev/stderr, /dev/fd/N and /proc/self/fd/N are written through descriptor N itself on commit(),
// so `perpo ... --output /dev/stdout > log` appends where the shell's output stands; a folder,
// block device or socket is refused (perpo::Error, input).
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace perpo {

class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::filesystem::path target);
  ~AtomicFileWriter();  // removes the temporary file if commit() was not called
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  std::ostream& stream() { return fd_ >= 0 ? static_cast<std::ostream&>(buffer_) : out_; }
  /// Flushes, fsyncs, renames over the target, fsyncs the folder. Throws perpo::Error on failure.
  void commit();

  const std::filesystem::path& target() const { return target_; }
  /// The temporary file; empty when the target is written in place (FIFO, device).
  const std::filesystem::path& temp_path() const { return temp_; }
  bool in_place() const { return temp_.empty(); }

 private:
  void write_to_descriptor();

  std::filesystem::path target_;    // as given
  std::filesystem::path write_to_;  // the target with symlinks followed
  std::filesystem::path temp_;
  std::ofstream out_;
  std::ostringstream buffer_;  // what goes to an inherited descriptor (fd_) on commit()
  int fd_ = -1;                // /dev/stdout, /dev/fd/N: written through descriptor N itself
  bool committed_ = false;
};

/// Removes temporary files of `target` left by perpo processes that no longer run; returns how
/// many were removed (each is logged as a warning).
int remove_stale_temp_files(const std::filesystem::path& target);

/// Writes `content` to `path` atomically (see above). Creates missing parent folders.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

/// fsyncs a file or folder by path. Throws perpo::Error on failure.
void fsync_path(const std::filesystem::path& path);

/// Reads a whole file; throws perpo::Error (input) naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace perpo
