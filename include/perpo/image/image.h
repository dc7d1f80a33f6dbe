// Images: decoding (PNG/JPEG via stb_image) and CLIP-style preprocessing as LLaVA-1.5 does it.
// No LibTorch here: pixels come out as a plain (C, H, W) float buffer that data/ wraps in a tensor.
// The single steps (pad, resize, crop, normalise) are declared in perpo/image/transforms.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "perpo/config/config.h"

namespace perpo {

/// 8-bit RGB pixels, row-major (H, W, 3).
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // size = height * width * 3
};

/// Normalised model input, channel-major (3, size, size), float32.
struct PixelValues {
  int channels = 3;
  int height = 0;
  int width = 0;
  std::vector<float> data;
};

/// Decodes a PNG/JPEG/BMP/... file; grey and RGBA become RGB. Throws perpo::Error (input) naming
/// the file when it is missing or not a decodable image.
RgbImage load_image(const std::filesystem::path& path);

/// An image file's width and height from its header, without decoding the pixels. Throws
/// perpo::Error (input) as load_image does.
struct ImageDims {
  int width = 0;
  int height = 0;
};
ImageDims read_image_dims(const std::filesystem::path& path);

/// Decodes an image held in memory; `name` is used in error messages.
RgbImage decode_image(const std::uint8_t* bytes, std::size_t size, const std::string& name);

/// CLIP preprocessing as the LLaVA-1.5 processor does it: for aspect "pad", pad to a square with
/// the mean colour (image centred); then resize (bicubic) shortest side to `size`, center-crop to
/// size x size, rescale by 1/255, normalise with mean/std.
PixelValues preprocess_image(const RgbImage& image, const ImageConfig& config);

}  // namespace perpo
