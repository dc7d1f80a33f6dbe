// Reading an input file whole, once, whatever kind of file it is that can be read once: a regular
// file, a FIFO or a pipe (`--input <(zcat lists.jsonl.gz)`, `/dev/stdin` fed by a pipe). Nothing
// reads such an input twice (format detection looks at the bytes in memory), so no record is lost.
//
//   std::string text = perpo::read_input_file("lists.jsonl");
//
// Refused with perpo::Error (input, exit 2) naming the file: a missing file, a folder, a character
// or block device (`/dev/zero` would never end), a socket, and more than `max_bytes` bytes (checked
// before reading for a regular file, while reading for a pipe).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace perpo {

/// "a folder", "a FIFO", "a character device", ... for messages about a path of this type.
std::string describe_file_type(std::filesystem::file_type type);

/// Largest input perpo reads by default: 16 GiB.
inline constexpr std::uint64_t kMaxInputBytes = std::uint64_t{16} << 30;

std::string read_input_file(const std::filesystem::path& path,
                            std::uint64_t max_bytes = kMaxInputBytes);

}  // namespace perpo
