// The steps of preprocess_image() (image.h), one function each, so tests and other modules can use
// them alone. Together they reproduce LLaVA-1.5's image path bit for bit on lossless inputs:
//
//   expand_to_square   LLaVA's expand2square: pad with int(mean * 255), image centred
//   resize_bicubic     Pillow's Image.resize(..., BICUBIC): antialiased when shrinking, 8-bit
//                      fixed-point taps, horizontal pass then vertical, uint8 in between
//   center_crop        transformers' center_crop: offsets (H - h) // 2, (W - w) // 2
//   normalize_pixels   transformers' rescale (x * 1/255 in double -> float32) and normalize
//                      ((x - mean) / std in float32), channel-major output
//
// Shapes: RgbImage is (H, W, 3) uint8, PixelValues is (3, H, W) float32.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "perpo/image/image.h"

namespace perpo {

/// Output (width, height) when the shortest edge is resized to `size` and the aspect ratio kept,
/// as transformers computes it: the long edge becomes int(size * long / short) (truncated).
/// Example: 640x480, size 336 -> (448, 336).
std::array<int, 2> shortest_edge_size(int width, int height, int size);

/// LLaVA's padding colour: int(m * 255) per channel. CLIP's mean gives (122, 116, 104).
std::array<std::uint8_t, 3> pad_colour(const std::vector<double>& mean);

/// Pads to a square of side max(W, H) filled with `background`; the image is pasted at
/// ((side - W) / 2, (side - H) / 2), rounded down. A square image is returned unchanged.
RgbImage expand_to_square(const RgbImage& image, const std::array<std::uint8_t, 3>& background);

/// Resizes to width x height with Pillow's bicubic filter (a = -0.5). When shrinking, the filter
/// is stretched by the scale factor (antialiasing), as Pillow does. Same size: a copy.
RgbImage resize_bicubic(const RgbImage& image, int width, int height);

/// Cuts the centred width x height window. Throws perpo::Error when the window is larger than the
/// image (never the case after a shortest-edge resize to the crop size).
RgbImage center_crop(const RgbImage& image, int width, int height);

/// (x / 255 - mean[c]) / std[c] per pixel, laid out (3, H, W). mean and std need 3 entries.
PixelValues normalize_pixels(const RgbImage& image, const std::vector<double>& mean,
                             const std::vector<double>& std);

}  // namespace perpo
