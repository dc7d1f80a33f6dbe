// The header of a safetensors file, parsed without LibTorch: SafetensorsFile (safetensors.h) builds
// its tensors on it, and fuzz/safetensors_header.cpp feeds it arbitrary bytes.
//
//   perpo::SafetensorsHeader header =
//       perpo::parse_safetensors_header(file_bytes, file_size, "model.safetensors");
//   for (const auto& entry : header.entries) use(entry.name, entry.dtype, entry.shape);
//
// Layout of a file: 8 bytes little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "BF16", "shape": [4096, 4096], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"format": "pt"}}
// then the data section; offsets are relative to its start.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace perpo {

/// One tensor's entry in a safetensors header, checked against the file's data section.
struct SafetensorsHeaderEntry {
  std::string name;                 // e.g. "lm_head.weight"
  std::string dtype;                // a name perpo reads: "F32", "BF16", "I64", ...
  std::size_t element_size = 0;     // bytes per element of `dtype`, e.g. 2 for "BF16"
  std::vector<std::int64_t> shape;  // e.g. [32000, 4096]
  std::uint64_t begin = 0;          // byte offsets in the data section, [begin, end)
  std::uint64_t end = 0;
};

struct SafetensorsHeader {
  std::uint64_t data_start = 0;                 // file offset of the data section (8 + N)
  std::vector<SafetensorsHeaderEntry> entries;  // sorted by `begin` (data order)
  std::map<std::string, std::string> metadata;  // "__metadata__" (its string values)
};

/// Bytes per element of a safetensors dtype name perpo reads; 0 for any other name.
std::size_t safetensors_element_size(std::string_view dtype);

/// Parses and checks the header of a safetensors file of `size` bytes starting at `bytes`.
/// Throws perpo::Error (input) naming `source` (and the tensor) for a truncated file, a header that
/// is not a JSON object, an unknown dtype, a bad shape or offsets that do not fit the data section.
SafetensorsHeader parse_safetensors_header(const unsigned char* bytes, std::uint64_t size,
                                           const std::string& source);

}  // namespace perpo
