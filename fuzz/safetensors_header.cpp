// Fuzz target: the safetensors header parser (model module; parse_safetensors_header has no
// LibTorch, so neither has this target).
//
// Input: the bytes of a whole safetensors file (8-byte length, JSON header, data section).
//
// Checks: the parser returns or throws an input error; every entry it returns is one a reader can
// use without reading outside the file: a known dtype, sizes >= 0, data_offsets inside the data
// section, and exactly numel * element_size bytes (computed without overflow); entries in data
// order.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "perpo/model/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace perpo;
  SafetensorsHeader header;
  if (!fuzz::accepts([&] { header = parse_safetensors_header(data, size, "fuzz.safetensors"); })) {
    return 0;
  }
  PERPO_FUZZ_CHECK(header.data_start >= 8 && header.data_start <= size, "data_start");
  const std::uint64_t data_size = size - header.data_start;
  std::uint64_t previous_begin = 0;
  for (const SafetensorsHeaderEntry& entry : header.entries) {
    const std::string what = "tensor '" + entry.name + "'";
    PERPO_FUZZ_CHECK(
        entry.element_size > 0 && entry.element_size == safetensors_element_size(entry.dtype),
        what + " dtype");
    PERPO_FUZZ_CHECK(entry.begin <= entry.end && entry.end <= data_size, what + " offsets");
    PERPO_FUZZ_CHECK(entry.begin >= previous_begin, what + " out of data order");
    previous_begin = entry.begin;
    // The exact byte count: 128-bit products, saturated once past any file size.
    unsigned __int128 bytes = entry.element_size;
    bool empty = false;
    for (std::int64_t dim : entry.shape) {
      PERPO_FUZZ_CHECK(dim >= 0, what + " has a negative size");
      if (dim == 0) empty = true;
      if (bytes <= data_size) bytes *= static_cast<std::uint64_t>(dim);
    }
    if (empty) bytes = 0;
    PERPO_FUZZ_CHECK(bytes == entry.end - entry.begin,
                     what + ": shape and dtype do not match data_offsets");
  }
  return 0;
}
