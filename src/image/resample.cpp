// Bicubic resizing that reproduces Pillow's Image.resize(size, Image.BICUBIC) on 8-bit RGB images,
// which is what transformers' CLIPImageProcessor runs (it resizes through PIL). Written from the
// published behaviour of Pillow's resampler:
//
//   * separable: a horizontal pass (into an 8-bit image), then a vertical pass;
//   * each output pixel centre maps to in = (out + 0.5) * scale; when shrinking (scale > 1) the
//     filter is stretched by `scale`, so every output pixel averages all the inputs it covers;
//   * taps are normalised to sum to 1 in double, then turned into integers with 22 fractional bits
//     (rounded away from zero); sums start at 0.5 (rounding) and are clamped to 0..255.
//
// Following those steps exactly makes the output bit-identical to Pillow's.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "perpo/core/error.h"
#include "perpo/image/transforms.h"

// The two passes are simple integer loops that GCC vectorises only above -O2's "very cheap"
// cost model; this file is small and self-contained, so it asks for -O3 (3x faster here).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

namespace perpo {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // fractional bits of the integer taps
constexpr double kBicubicSupport = 2.0;     // the cubic kernel is zero beyond |x| >= 2

/// Keys' cubic convolution kernel with a = -0.5 (Pillow's BICUBIC).
double bicubic_kernel(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

/// Integer taps for one axis: output i reads inputs first[i] .. first[i] + count[i] - 1 with
/// weights taps[i * window + k].
struct AxisTaps {
  int window = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<std::int32_t> taps;  // (out_size, window)
};

AxisTaps compute_taps(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);  // stretch the kernel only when shrinking
  const double support = kBicubicSupport * filter_scale;
  AxisTaps axis;
  axis.window = static_cast<int>(std::ceil(support)) * 2 + 1;
  axis.first.resize(out_size);
  axis.count.resize(out_size);
  axis.taps.assign(static_cast<std::size_t>(out_size) * axis.window, 0);
  std::vector<double> weights(axis.window);
  const double inverse_filter_scale = 1.0 / filter_scale;
  for (int out = 0; out < out_size; ++out) {
    const double center = (out + 0.5) * scale;
    // Input pixels whose centres lie within the support, rounded as Pillow rounds them.
    const int first = std::max(static_cast<int>(center - support + 0.5), 0);
    const int last = std::min(static_cast<int>(center + support + 0.5), in_size);  // exclusive
    const int count = last - first;
    double total = 0.0;
    for (int k = 0; k < count; ++k) {
      weights[k] = bicubic_kernel((k + first - center + 0.5) * inverse_filter_scale);
      total += weights[k];
    }
    std::int32_t* taps = &axis.taps[static_cast<std::size_t>(out) * axis.window];
    for (int k = 0; k < count; ++k) {
      const double w = total != 0.0 ? weights[k] / total : weights[k];
      const double fixed = w * (1 << kPrecisionBits);
      taps[k] = static_cast<std::int32_t>(w < 0 ? fixed - 0.5 : fixed + 0.5);
    }
    axis.first[out] = first;
    axis.count[out] = count;
  }
  return axis;
}

/// Rounds a fixed-point sum back to 8 bits, clamped to 0..255.
inline std::uint8_t to_byte(std::int32_t sum) {
  const std::int32_t value = sum >> kPrecisionBits;  // arithmetic shift: floor
  return static_cast<std::uint8_t>(std::clamp(value, 0, 255));
}

constexpr std::int32_t kHalf = 1 << (kPrecisionBits - 1);

/// (H, W, 3) -> (H, out_width, 3)
RgbImage resize_horizontal(const RgbImage& in, int out_width) {
  const AxisTaps axis = compute_taps(in.width, out_width);
  RgbImage out;
  out.width = out_width;
  out.height = in.height;
  out.pixels.resize(static_cast<std::size_t>(out.height) * out.width * 3);
  for (int y = 0; y < in.height; ++y) {
    const std::uint8_t* row = &in.pixels[static_cast<std::size_t>(y) * in.width * 3];
    std::uint8_t* out_row = &out.pixels[static_cast<std::size_t>(y) * out.width * 3];
    for (int x = 0; x < out_width; ++x) {
      const std::int32_t* taps = &axis.taps[static_cast<std::size_t>(x) * axis.window];
      const std::uint8_t* src = row + axis.first[x] * 3;
      std::int32_t r = kHalf, g = kHalf, b = kHalf;
      for (int k = 0; k < axis.count[x]; ++k) {
        r += src[k * 3 + 0] * taps[k];
        g += src[k * 3 + 1] * taps[k];
        b += src[k * 3 + 2] * taps[k];
      }
      out_row[x * 3 + 0] = to_byte(r);
      out_row[x * 3 + 1] = to_byte(g);
      out_row[x * 3 + 2] = to_byte(b);
    }
  }
  return out;
}

/// (H, W, 3) -> (out_height, W, 3)
RgbImage resize_vertical(const RgbImage& in, int out_height) {
  const AxisTaps axis = compute_taps(in.height, out_height);
  RgbImage out;
  out.width = in.width;
  out.height = out_height;
  const std::size_t row_values = static_cast<std::size_t>(in.width) * 3;
  out.pixels.resize(static_cast<std::size_t>(out_height) * row_values);
  std::vector<std::int32_t> sums(row_values);
  for (int y = 0; y < out_height; ++y) {
    // Accumulate whole rows at a time: contiguous reads, and the inner loop vectorises.
    std::fill(sums.begin(), sums.end(), kHalf);
    const std::int32_t* taps = &axis.taps[static_cast<std::size_t>(y) * axis.window];
    std::int32_t* __restrict row_sums = sums.data();
    for (int k = 0; k < axis.count[y]; ++k) {
      const std::uint8_t* __restrict src = &in.pixels[(axis.first[y] + k) * row_values];
      const std::int32_t tap = taps[k];
      for (std::size_t i = 0; i < row_values; ++i) row_sums[i] += src[i] * tap;
    }
    std::uint8_t* __restrict out_row = &out.pixels[static_cast<std::size_t>(y) * row_values];
    for (std::size_t i = 0; i < row_values; ++i) out_row[i] = to_byte(row_sums[i]);
  }
  return out;
}

}  // namespace

RgbImage resize_bicubic(const RgbImage& image, int width, int height) {
  PERPO_CHECK(width > 0 && height > 0, "resize_bicubic: target size must be positive, got ", width,
              "x", height);
  PERPO_CHECK(image.width > 0 && image.height > 0 &&
                  image.pixels.size() == static_cast<std::size_t>(image.width) * image.height * 3,
              "resize_bicubic: image of ", image.width, "x", image.height, " holds ",
              image.pixels.size(), " bytes, expected width * height * 3");
  // Pillow skips a pass whose size does not change (and so does this).
  RgbImage result = image.width != width ? resize_horizontal(image, width) : image;
  if (result.height != height) result = resize_vertical(result, height);
  return result;
}

}  // namespace perpo
