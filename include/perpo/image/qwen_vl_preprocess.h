// Qwen2-VL / Qwen2.5-VL image preprocessing for a still image, as transformers'
// Qwen2VLImageProcessor (the slow, PIL-based one; Qwen2.5-VL uses it too) computes it:
//
//   smart_resize        the target size: both sides multiples of factor = patch * merge (28),
//                       area within [min_pixels, max_pixels], aspect ratio kept as far as it can
//   pillow_resize_bicubic  Pillow's BICUBIC, bit-exact on 8-bit RGB, with Pillow 13's choice of
//                       which pass runs first (each pass is transforms.h's resize_bicubic)
//   normalize_pixels    x * (1/255) in double -> float32, then (x - mean) / std in float32
//   qwen_vl_patches     the still image repeated to temporal_patch_size (2) frames, cut into
//                       patch x patch squares ordered by 2x2 merge block (the processor's
//                       reshape + transpose(0, 3, 6, 4, 7, 2, 1, 5, 8))
//
// Shapes (legend: C = 3 channels, T = temporal_patch_size = 2, P = patch_size = 14,
// M = merge_size = 2, gh = resized height / P, gw = resized width / P):
//   pixel_values    (gh * gw, C * T * P * P) = (N, 1176) float32, row-major
//   image_grid_thw  (1, gh, gw)
//   image tokens    gh * gw / M^2: how many times <|image_pad|> is repeated in the prompt
//
// Row r of pixel_values is patch (row, col) of the patch grid with
//   r = ((row / M) * (gw / M) + col / M) * M * M + (row % M) * M + col % M,
// and column ((c * T + t) * P + y) * P + x holds channel c at (row * P + y, col * P + x) of the
// normalised resized image (the same for both frames t).
//
//   perpo::QwenVlImageOptions options;                  // Qwen2VLImageProcessor's defaults
//   perpo::QwenVlPixels pixels = perpo::preprocess_qwen_vl_image(image, options);
//   // pixels.data: (pixels.rows, pixels.cols); pixels.image_tokens <|image_pad|> tokens
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "perpo/image/image.h"

namespace perpo {

/// OpenAI CLIP's normalisation (transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD), RGB.
inline constexpr std::array<double, 3> kOpenAiClipMean = {0.48145466, 0.4578275, 0.40821073};
inline constexpr std::array<double, 3> kOpenAiClipStd = {0.26862954, 0.26130258, 0.27577711};

/// The processor's settings (a checkpoint's preprocessor_config.json). Defaults are
/// Qwen2VLImageProcessor's; Qwen2.5-VL checkpoints ship min_pixels 3136, max_pixels 12845056.
struct QwenVlImageOptions {
  int patch_size = 14;                           // vision tower's patch side, e.g. 14
  int merge_size = 2;                            // M x M patches merge into one token, e.g. 2
  int temporal_patch_size = 2;                   // frames per patch; a still image is repeated
  std::int64_t min_pixels = 56 * 56;             // smallest resized area, e.g. 3136
  std::int64_t max_pixels = 14 * 14 * 4 * 1280;  // largest resized area, e.g. 1003520
  std::vector<double> mean = {kOpenAiClipMean.begin(), kOpenAiClipMean.end()};
  std::vector<double> std = {kOpenAiClipStd.begin(), kOpenAiClipStd.end()};
};

/// A size in pixels, height first as transformers returns it.
struct ImageSize {
  int height = 0;
  int width = 0;
  bool operator==(const ImageSize&) const = default;
};

/// transformers' smart_resize, in its operation order on doubles with Python's rounding
/// (round half to even: a side of 70 with factor 28 is 2.5 factors and becomes 56, not 84):
///   h = round(height / factor) * factor, w likewise;
///   if h * w > max_pixels: beta = sqrt(height * width / max_pixels),
///       h = max(factor, floor(height / beta / factor) * factor), w likewise;
///   elif h * w < min_pixels: beta = sqrt(min_pixels / (height * width)),
///       h = ceil(height * beta / factor) * factor, w likewise (no clamp: may exceed max_pixels).
/// Throws perpo::Error (input) when max(height, width) / min(height, width) > 200, when a side
/// is not positive (an image too small to resize), or for factor, min_pixels or max_pixels < 1.
ImageSize smart_resize(int height, int width, int factor = 28, std::int64_t min_pixels = 56 * 56,
                       std::int64_t max_pixels = 14 * 14 * 4 * 1280);

/// Pillow's Image.resize((width, height), BICUBIC) on 8-bit RGB, bit for bit, as Pillow 13.0
/// runs it: each pass is one axis of resize_bicubic (transforms.h: fixed-point taps,
/// antialiased when shrinking, uint8 rounding after the pass); a pass whose size does not change
/// is skipped; and the vertical pass runs first when the height shrinks by more than twice as
/// many pixels as the width does:
///   vertical first  <=>  height < in_height  and  in_height - height > 2 * (in_width - width)
/// (else horizontal first). The order changes the output: the intermediate uint8 rounding sits
/// on the other axis. Example: 30x47 -> 28x28 shrinks the height by 19 > 2 * 2: vertical first.
/// The rule was measured on Pillow 13.0 (python-pillow PR #9549, "if height is scaled down
/// significantly more than width, resize vertically first"), exact on ~2500 random and boundary
/// sizes; older Pillow always runs the horizontal pass first, as resize_bicubic does.
RgbImage pillow_resize_bicubic(const RgbImage& image, int width, int height);

/// The processor's output for one still image.
struct QwenVlPixels {
  int rows = 0;                   // gh * gw patches, e.g. 8
  int cols = 0;                   // C * T * P * P, e.g. 1176
  std::vector<float> data;        // (rows, cols), see the file comment
  std::array<int, 3> grid_thw{};  // (1, gh, gw): image_grid_thw
  int image_tokens = 0;           // gh * gw / M^2 merged tokens
  ImageSize resized;              // the smart_resize size, e.g. {56, 28}
};

/// The patch layout of an already resized and normalised image (3, H, W); H and W must be
/// multiples of patch_size * merge_size. Throws perpo::Error otherwise.
QwenVlPixels qwen_vl_patches(const PixelValues& normalized, const QwenVlImageOptions& options);

/// The whole processor: smart_resize, Pillow bicubic, rescale + normalise, patch layout.
/// Throws perpo::Error (input) for bad settings or an image smart_resize rejects.
QwenVlPixels preprocess_qwen_vl_image(const RgbImage& image, const QwenVlImageOptions& options);

}  // namespace perpo
