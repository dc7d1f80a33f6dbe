// The pixel_values of the Qwen2.5-VL fixtures, computed from a formula instead of stored (the
// same function as pixel_values() in tools/make_qwen_vision_fixtures.py, exact in float32).
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace perpo::test {

/// (rows, P), value = (code - 127.5) / 128 with code the top byte of (n * 2654435761) mod 2^32,
/// n = salt * 1000003 + r * P + c.
inline torch::Tensor fixture_pixels(std::int64_t rows, std::int64_t patch_values,
                                    std::uint64_t salt) {
  torch::Tensor pixels = torch::empty({rows, patch_values});
  float* out = pixels.data_ptr<float>();
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < patch_values; ++c) {
      const std::uint64_t n = salt * 1000003 + static_cast<std::uint64_t>(r * patch_values + c);
      const std::uint64_t code = ((n * 2654435761ull) & 0xFFFFFFFFull) >> 24;
      out[r * patch_values + c] = static_cast<float>((static_cast<double>(code) - 127.5) / 128.0);
    }
  }
  return pixels;
}

}  // namespace perpo::test
