// Qwen2VLImageProcessor for a still image (see qwen_vl_preprocess.h): smart_resize, Pillow's
// bicubic resize (its passes from transforms.h, in Pillow 13's order), rescale + normalise, and
// the 2x2-merge-block patch layout.
#include "perpo/image/qwen_vl_preprocess.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "perpo/core/error.h"
#include "perpo/image/transforms.h"

namespace perpo {
namespace {

constexpr double kMaxAspectRatio = 200.0;  // smart_resize's limit on max(h, w) / min(h, w)

/// Python's round() on a double: the nearest integer, halves to the even one (round(2.5) == 2,
/// where std::round gives 3). x >= 0 here, so x - floor(x) is exact.
double round_half_even(double x) {
  const double lower = std::floor(x);
  const double fraction = x - lower;
  if (fraction > 0.5) return lower + 1.0;
  if (fraction < 0.5) return lower;
  return std::fmod(lower, 2.0) == 0.0 ? lower : lower + 1.0;
}

int checked_side(double side, int height, int width) {
  if (side > std::numeric_limits<int>::max()) {
    throw input_error("smart_resize: image of ", width, "x", height,
                      " would be resized to a side of ", side, " pixels")
        .hint("lower min_pixels");
  }
  return static_cast<int>(side);
}

void check_options(const QwenVlImageOptions& options) {
  PERPO_CHECK_INPUT(
      options.patch_size >= 1 && options.merge_size >= 1 && options.temporal_patch_size >= 1,
      "Qwen-VL image processor: patch_size, merge_size and temporal_patch_size must "
      "be >= 1, got ",
      options.patch_size, ", ", options.merge_size, ", ", options.temporal_patch_size);
}

}  // namespace

ImageSize smart_resize(int height, int width, int factor, std::int64_t min_pixels,
                       std::int64_t max_pixels) {
  PERPO_CHECK_INPUT(factor >= 1 && min_pixels >= 1 && max_pixels >= 1,
                    "smart_resize: factor, min_pixels and max_pixels must be >= 1, got ", factor,
                    ", ", min_pixels, ", ", max_pixels);
  if (height < 1 || width < 1) {
    throw input_error("smart_resize: image of ", width, "x", height,
                      " pixels is too small: both sides must be at least 1 pixel")
        .hint("check the image file; an empty image cannot be resized");
  }
  // Python: max(h, w) / min(h, w), a correctly rounded double division, as here.
  const double ratio = static_cast<double>(std::max(height, width)) / std::min(height, width);
  if (ratio > kMaxAspectRatio) {
    throw input_error("smart_resize: image of ", width, "x", height,
                      " pixels has an aspect ratio of ", ratio,
                      "; Qwen-VL's image processor accepts at most ", kMaxAspectRatio)
        .hint("crop or pad the image to an aspect ratio of at most 200:1");
  }
  const double h = height, w = width, f = factor;
  const double area = static_cast<double>(static_cast<std::int64_t>(height) * width);
  double h_bar = round_half_even(h / f) * f;
  double w_bar = round_half_even(w / f) * f;
  if (h_bar * w_bar > static_cast<double>(max_pixels)) {
    // Only this branch clamps to one factor: a very thin image keeps a side of `factor`.
    const double beta = std::sqrt(area / static_cast<double>(max_pixels));
    h_bar = std::max(f, std::floor(h / beta / f) * f);
    w_bar = std::max(f, std::floor(w / beta / f) * f);
  } else if (h_bar * w_bar < static_cast<double>(min_pixels)) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / area);
    h_bar = std::ceil(h * beta / f) * f;
    w_bar = std::ceil(w * beta / f) * f;
  }
  return {checked_side(h_bar, height, width), checked_side(w_bar, height, width)};
}

RgbImage pillow_resize_bicubic(const RgbImage& image, int width, int height) {
  const bool vertical_first =
      height < image.height && image.height - height > 2 * (image.width - width);
  if (!vertical_first) return resize_bicubic(image, width, height);  // horizontal, then vertical
  // resize_bicubic skips an axis whose size stays: this call is Pillow's vertical pass alone.
  const RgbImage shorter = resize_bicubic(image, image.width, height);
  return resize_bicubic(shorter, width, height);
}

QwenVlPixels qwen_vl_patches(const PixelValues& normalized, const QwenVlImageOptions& options) {
  check_options(options);
  const int patch = options.patch_size, merge = options.merge_size;
  const int frames = options.temporal_patch_size;
  const int channels = normalized.channels;
  const int block = patch * merge;
  PERPO_CHECK(normalized.height > 0 && normalized.width > 0 && normalized.height % block == 0 &&
                  normalized.width % block == 0,
              "qwen_vl_patches: image of ", normalized.width, "x", normalized.height,
              " is not a whole number of ", block, "x", block, " merge blocks");
  const std::size_t plane = static_cast<std::size_t>(normalized.height) * normalized.width;
  PERPO_CHECK(channels >= 1 && normalized.data.size() == channels * plane,
              "qwen_vl_patches: pixel buffer holds ", normalized.data.size(),
              " values, expected channels * height * width = ", channels * plane);

  QwenVlPixels out;
  const int grid_h = normalized.height / patch, grid_w = normalized.width / patch;
  out.grid_thw = {1, grid_h, grid_w};  // one temporal patch: the still image, repeated
  out.rows = grid_h * grid_w;
  out.cols = channels * frames * patch * patch;
  out.image_tokens = out.rows / (merge * merge);
  out.resized = {normalized.height, normalized.width};
  out.data.resize(static_cast<std::size_t>(out.rows) * out.cols);  // (rows, cols)

  float* row_data = out.data.data();
  for (int block_row = 0; block_row < grid_h / merge; ++block_row) {
    for (int block_col = 0; block_col < grid_w / merge; ++block_col) {
      for (int inner_row = 0; inner_row < merge; ++inner_row) {
        for (int inner_col = 0; inner_col < merge; ++inner_col, row_data += out.cols) {
          const int top = (block_row * merge + inner_row) * patch;
          const int left = (block_col * merge + inner_col) * patch;
          float* value = row_data;  // columns ((c * T + t) * P + y) * P + x
          for (int c = 0; c < channels; ++c) {
            const float* source = &normalized.data[c * plane];
            for (int t = 0; t < frames; ++t) {
              for (int y = 0; y < patch; ++y) {
                const float* line =
                    source + static_cast<std::size_t>(top + y) * normalized.width + left;
                value = std::copy(line, line + patch, value);
              }
            }
          }
        }
      }
    }
  }
  return out;
}

QwenVlPixels preprocess_qwen_vl_image(const RgbImage& image, const QwenVlImageOptions& options) {
  check_options(options);
  const ImageSize size =
      smart_resize(image.height, image.width, options.patch_size * options.merge_size,
                   options.min_pixels, options.max_pixels);
  PERPO_CHECK(image.pixels.size() == static_cast<std::size_t>(image.width) * image.height * 3,
              "preprocess_qwen_vl_image: image of ", image.width, "x", image.height, " holds ",
              image.pixels.size(), " bytes, expected width * height * 3");
  const RgbImage resized = pillow_resize_bicubic(image, size.width, size.height);
  return qwen_vl_patches(normalize_pixels(resized, options.mean, options.std), options);
}

}  // namespace perpo
