// JsonlWriter: appends records to a JSONL file one whole line at a time.
//
//   perpo::JsonlWriter out("run/lists.jsonl");
//   out.write(perpo::to_json(list));          // one line, handed to the kernel at once
//
// Each line is serialised first and then handed to the operating system in one write(2) on a file
// opened with O_APPEND, so a crash of perpo never leaves half a line: a reader sees the line whole
// or not at all. (A power loss can still cut the last line; with `sync_each_line` every line is
// fsync'ed too.) When an existing file ends in a line without its newline, opening it repairs the
// end so appends start clean: a whole JSON object (a record written by another tool, or an editor
// that drops the final newline) gets its newline; anything else is a partial line left by an
// older crash or a power loss and is cut off, with a warning.
#pragma once

#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

namespace perpo {

class JsonlWriter {
 public:
  /// Opens `path` for appending (with `truncate`, empties it first); creates missing folders.
  /// Throws perpo::Error naming the file when it cannot be opened.
  explicit JsonlWriter(const std::filesystem::path& path, bool truncate = false,
                       bool sync_each_line = false);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;

  /// Appends `record` as one line (compact JSON, UTF-8 kept). Throws perpo::Error on failure.
  void write(const nlohmann::json& record);
  /// Appends `line` (which must not hold a newline) plus '\n'.
  void write_line(std::string_view line);

  std::size_t lines_written() const { return lines_written_; }
  /// Bytes of a partial last line cut off when the file was opened (0 normally).
  std::size_t repaired_bytes() const { return repaired_bytes_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  bool sync_each_line_ = false;
  std::size_t lines_written_ = 0;
  std::size_t repaired_bytes_ = 0;
};

}  // namespace perpo
