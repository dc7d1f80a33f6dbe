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
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace perpo {

class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::filesystem::path target);
  ~AtomicFileWriter();  // removes the temporary file if commit() was not called
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  std::ostream& stream() { return out_; }
  /// Flushes, fsyncs, renames over the target, fsyncs the folder. Throws perpo::Error on failure.
  void commit();

  const std::filesystem::path& target() const { return target_; }
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  std::ofstream out_;
  bool committed_ = false;
};

/// Writes `content` to `path` atomically (see above). Creates missing parent folders.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

/// fsyncs a file or folder by path. Throws perpo::Error on failure.
void fsync_path(const std::filesystem::path& path);

/// Reads a whole file; throws perpo::Error (input) naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace perpo
