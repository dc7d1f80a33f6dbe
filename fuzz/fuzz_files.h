// Scratch files for fuzz targets whose entry point reads a path (the data readers): the input is
// written to a file in a per-process folder (under /dev/shm when there is one: no disk I/O),
// removed when the process exits.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "fuzz_check.h"

namespace perpo::fuzz {

inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::error_code error;
    std::filesystem::path base = "/dev/shm";
    if (!std::filesystem::is_directory(base, error) || ::access(base.c_str(), W_OK) != 0) {
      base = std::filesystem::temp_directory_path();
    }
    std::string pattern = (base / "perpo-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      fail("cannot create a scratch folder in " + base.string());
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_dir(), ignored);
    });
    return std::filesystem::path(pattern);
  }();
  return dir;
}

/// Writes `content` to scratch_dir() / name (replacing it) and returns the path.
inline std::filesystem::path scratch_file(const std::string& name, std::string_view content) {
  const std::filesystem::path path = scratch_dir() / name;
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) fail("cannot write " + path.string());
  const bool written = std::fwrite(content.data(), 1, content.size(), file) == content.size();
  if (std::fclose(file) != 0 || !written) fail("cannot write " + path.string());
  return path;
}

}  // namespace perpo::fuzz
