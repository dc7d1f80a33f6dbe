// Canvas, antialiased shapes and PNG output for the synthetic tasks (see synth/raster.h).
#include "perpo/synth/raster.h"

#include <algorithm>
#include <cmath>

#include "perpo/core/error.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC  // stb's symbols stay private to this file
#define STBI_WRITE_NO_STDIO     // perpo writes the bytes itself (atomically)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace perpo {

namespace {
constexpr int kSamplesPerSide = 4;  // 4x4 coverage samples per pixel
constexpr double kPi = 3.14159265358979323846;
}  // namespace

double colour_distance(Rgb a, Rgb b) {
  const double dr = double(a.r) - b.r, dg = double(a.g) - b.g, db = double(a.b) - b.b;
  return std::sqrt(dr * dr + dg * dg + db * db);
}

double ShapeGeometry::area() const {
  switch (kind) {
    case ShapeKind::kCircle:
      return kPi / 4 * extent * extent;
    case ShapeKind::kSquare:
      return extent * extent;
    case ShapeKind::kTriangle:
      return extent * extent / 2;
  }
  return 0;
}

bool ShapeGeometry::contains(double x, double y) const {
  const double half = extent / 2;
  switch (kind) {
    case ShapeKind::kCircle: {
      const double dx = x - cx, dy = y - cy;
      return dx * dx + dy * dy <= half * half;
    }
    case ShapeKind::kSquare:
      return std::abs(x - cx) <= half && std::abs(y - cy) <= half;
    case ShapeKind::kTriangle: {
      // Apex (cx, y1), base from (x1, y2) to (x2, y2): at depth t = (y - y1) / extent below the
      // apex, the triangle is t * extent wide.
      const double t = (y - y1()) / extent;
      return t >= 0 && t <= 1 && std::abs(x - cx) <= t * half;
    }
  }
  return false;
}

CoverageMask shape_coverage(const ShapeGeometry& shape) {
  CoverageMask mask;
  mask.x0 = static_cast<int>(std::floor(shape.x1()));
  mask.y0 = static_cast<int>(std::floor(shape.y1()));
  mask.width = static_cast<int>(std::ceil(shape.x2())) - mask.x0;
  mask.height = static_cast<int>(std::ceil(shape.y2())) - mask.y0;
  mask.values.assign(static_cast<std::size_t>(mask.width) * mask.height, 0.0f);
  constexpr double step = 1.0 / kSamplesPerSide;
  for (int y = 0; y < mask.height; ++y) {
    for (int x = 0; x < mask.width; ++x) {
      int inside = 0;
      for (int sy = 0; sy < kSamplesPerSide; ++sy) {
        for (int sx = 0; sx < kSamplesPerSide; ++sx) {
          inside +=
              shape.contains(mask.x0 + x + (sx + 0.5) * step, mask.y0 + y + (sy + 0.5) * step);
        }
      }
      mask.values[static_cast<std::size_t>(y) * mask.width + x] =
          static_cast<float>(inside) / (kSamplesPerSide * kSamplesPerSide);
    }
  }
  return mask;
}

Canvas::Canvas(int width, int height, Rgb background) : width_(width), height_(height) {
  PERPO_CHECK(width > 0 && height > 0, "a canvas needs a positive size, got ", width, "x", height);
  rgb_.resize(static_cast<std::size_t>(width) * height * 3);
  for (std::size_t i = 0; i < rgb_.size(); i += 3) {
    rgb_[i] = background.r;
    rgb_[i + 1] = background.g;
    rgb_[i + 2] = background.b;
  }
}

void Canvas::fill_coverage(const CoverageMask& mask, Rgb colour) {
  const float target[3] = {float(colour.r), float(colour.g), float(colour.b)};
  for (int y = 0; y < mask.height; ++y) {
    const int row = mask.y0 + y;
    if (row < 0 || row >= height_) continue;
    for (int x = 0; x < mask.width; ++x) {
      const int col = mask.x0 + x;
      const float alpha = mask.at(x, y);
      if (col < 0 || col >= width_ || alpha <= 0) continue;
      float* pixel = &rgb_[(static_cast<std::size_t>(row) * width_ + col) * 3];
      for (int c = 0; c < 3; ++c) pixel[c] += alpha * (target[c] - pixel[c]);
    }
  }
}

void Canvas::add_noise(SynthRng& rng, double amplitude) {
  if (amplitude <= 0) return;
  for (float& value : rgb_) value += static_cast<float>(rng.uniform(-amplitude, amplitude));
}

RgbImage Canvas::to_image() const {
  RgbImage image;
  image.width = width_;
  image.height = height_;
  image.pixels.resize(rgb_.size());
  for (std::size_t i = 0; i < rgb_.size(); ++i) {
    image.pixels[i] = static_cast<std::uint8_t>(std::clamp(std::lround(rgb_[i]), 0L, 255L));
  }
  return image;
}

std::string encode_png(const RgbImage& image) {
  PERPO_CHECK(image.width > 0 && image.height > 0 &&
                  image.pixels.size() == static_cast<std::size_t>(image.width) * image.height * 3,
              "encode_png: the image is ", image.width, "x", image.height, " but holds ",
              image.pixels.size(), " bytes");
  std::string bytes;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
  };
  const int ok = stbi_write_png_to_func(append, &bytes, image.width, image.height, 3,
                                        image.pixels.data(), image.width * 3);
  PERPO_CHECK(ok != 0 && !bytes.empty(), "encoding a ", image.width, "x", image.height,
              " PNG failed");
  return bytes;
}

}  // namespace perpo
