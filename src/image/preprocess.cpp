// CLIP preprocessing as LLaVA-1.5 runs it: expand2square (aspect "pad"), then transformers'
// CLIPImageProcessor: shortest-edge bicubic resize, center crop, rescale, normalise.
#include <algorithm>
#include <cstring>

#include "perpo/core/error.h"
#include "perpo/image/image.h"
#include "perpo/image/transforms.h"

namespace perpo {
namespace {

void check_image(const RgbImage& image, const char* where) {
  PERPO_CHECK(image.width > 0 && image.height > 0, where, ": image has zero size (", image.width,
              "x", image.height, ")");
  PERPO_CHECK(image.pixels.size() == static_cast<std::size_t>(image.width) * image.height * 3,
              where, ": image of ", image.width, "x", image.height, " holds ", image.pixels.size(),
              " bytes, expected width * height * 3");
}

void check_channel_stats(const std::vector<double>& mean, const std::vector<double>& std) {
  PERPO_CHECK_INPUT(mean.size() == 3, "image.mean needs 3 values (R, G, B), got ", mean.size());
  PERPO_CHECK_INPUT(std.size() == 3, "image.std needs 3 values (R, G, B), got ", std.size());
  for (double s : std) PERPO_CHECK_INPUT(s > 0, "image.std values must be > 0, got ", s);
}

}  // namespace

std::array<int, 2> shortest_edge_size(int width, int height, int size) {
  PERPO_CHECK(width > 0 && height > 0 && size > 0, "shortest_edge_size: sizes must be positive");
  const int shortest = std::min(width, height);
  const int longest = std::max(width, height);
  // transformers: int(size * long / short), a double division truncated toward zero.
  const int new_long =
      static_cast<int>(static_cast<double>(static_cast<long long>(size) * longest) / shortest);
  return width <= height ? std::array<int, 2>{size, new_long} : std::array<int, 2>{new_long, size};
}

std::array<std::uint8_t, 3> pad_colour(const std::vector<double>& mean) {
  PERPO_CHECK_INPUT(mean.size() == 3, "image.mean needs 3 values (R, G, B), got ", mean.size());
  std::array<std::uint8_t, 3> colour{};
  for (int c = 0; c < 3; ++c) {
    // LLaVA: tuple(int(x * 255) for x in image_mean); int() truncates.
    colour[c] = static_cast<std::uint8_t>(std::clamp(static_cast<int>(mean[c] * 255), 0, 255));
  }
  return colour;
}

RgbImage expand_to_square(const RgbImage& image, const std::array<std::uint8_t, 3>& background) {
  check_image(image, "expand_to_square");
  if (image.width == image.height) return image;
  const int side = std::max(image.width, image.height);
  const int left = (side - image.width) / 2;
  const int top = (side - image.height) / 2;
  RgbImage square;
  square.width = side;
  square.height = side;
  square.pixels.resize(static_cast<std::size_t>(side) * side * 3);  // (side, side, 3)
  for (std::size_t i = 0; i < square.pixels.size(); i += 3) {
    std::memcpy(&square.pixels[i], background.data(), 3);
  }
  const std::size_t row_bytes = static_cast<std::size_t>(image.width) * 3;
  for (int y = 0; y < image.height; ++y) {
    std::memcpy(&square.pixels[(static_cast<std::size_t>(top + y) * side + left) * 3],
                &image.pixels[y * row_bytes], row_bytes);
  }
  return square;
}

RgbImage center_crop(const RgbImage& image, int width, int height) {
  check_image(image, "center_crop");
  PERPO_CHECK(width > 0 && height > 0 && width <= image.width && height <= image.height,
              "center_crop: window ", width, "x", height, " does not fit in the image ",
              image.width, "x", image.height);
  if (width == image.width && height == image.height) return image;
  const int top = (image.height - height) / 2;
  const int left = (image.width - width) / 2;
  RgbImage crop;
  crop.width = width;
  crop.height = height;
  crop.pixels.resize(static_cast<std::size_t>(width) * height * 3);  // (height, width, 3)
  const std::size_t row_bytes = static_cast<std::size_t>(width) * 3;
  for (int y = 0; y < height; ++y) {
    std::memcpy(&crop.pixels[y * row_bytes],
                &image.pixels[(static_cast<std::size_t>(top + y) * image.width + left) * 3],
                row_bytes);
  }
  return crop;
}

PixelValues normalize_pixels(const RgbImage& image, const std::vector<double>& mean,
                             const std::vector<double>& std) {
  check_image(image, "normalize_pixels");
  check_channel_stats(mean, std);
  PixelValues out;
  out.channels = 3;
  out.height = image.height;
  out.width = image.width;
  const std::size_t plane = static_cast<std::size_t>(image.width) * image.height;
  out.data.resize(3 * plane);  // (3, H, W)
  // transformers: rescale in double then cast to float32; normalise in float32 with float32
  // mean/std. A 256-entry table per channel gives the same floats for every byte value.
  constexpr double kRescale = 1.0 / 255.0;
  for (int c = 0; c < 3; ++c) {
    const float channel_mean = static_cast<float>(mean[c]);
    const float channel_std = static_cast<float>(std[c]);
    float table[256];
    for (int v = 0; v < 256; ++v) {
      const float rescaled = static_cast<float>(v * kRescale);
      table[v] = (rescaled - channel_mean) / channel_std;
    }
    float* dst = &out.data[c * plane];
    for (std::size_t i = 0; i < plane; ++i) dst[i] = table[image.pixels[i * 3 + c]];
  }
  return out;
}

PixelValues preprocess_image(const RgbImage& image, const ImageConfig& config) {
  check_image(image, "preprocess_image");
  PERPO_CHECK_INPUT(config.size > 0, "image.size must be > 0, got ", config.size);
  PERPO_CHECK_INPUT(config.aspect == "pad" || config.aspect == "crop",
                    "image.aspect must be 'pad' or 'crop', got '", config.aspect, "'");
  check_channel_stats(config.mean, config.std);

  RgbImage current =
      config.aspect == "pad" ? expand_to_square(image, pad_colour(config.mean)) : image;
  const auto [width, height] = shortest_edge_size(current.width, current.height, config.size);
  current = resize_bicubic(current, width, height);
  current = center_crop(current, config.size, config.size);
  return normalize_pixels(current, config.mean, config.std);  // (3, size, size)
}

}  // namespace perpo
