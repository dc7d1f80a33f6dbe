// Drawing for the synthetic tasks: an RGB canvas, antialiased shapes, light noise and PNG output.
// Plain C++ (no LibTorch); PNG through stb_image_write, whose single implementation is here.
//
//   perpo::Canvas canvas(48, 48, {240, 236, 228});
//   canvas.fill_coverage(perpo::shape_coverage(shape), {220, 40, 40});   // antialiased circle
//   canvas.add_noise(rng, 4.0);                                         // +-4 levels per channel
//   std::string png = perpo::encode_png(canvas.to_image());
//
// Coordinates are continuous pixels: pixel (c, r) covers [c, c+1) x [r, r+1), so a circle at
// (24, 24) with radius 5 spans columns 19..28. Antialiasing is by coverage: each pixel samples its
// area on a 4x4 grid, and the colour is blended by the fraction of samples inside the shape.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perpo/image/image.h"
#include "perpo/synth/random.h"

namespace perpo {

/// An 8-bit RGB colour.
struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

/// Euclidean distance of two colours in RGB units (0 .. 441).
double colour_distance(Rgb a, Rgb b);

/// Fraction of each pixel covered by something, over a rectangle of the canvas.
struct CoverageMask {
  int x0 = 0, y0 = 0;         // top-left pixel of the mask on the canvas
  int width = 0, height = 0;  // pixels
  std::vector<float> values;  // (height, width), each in [0, 1]

  float at(int x, int y) const { return values[static_cast<std::size_t>(y) * width + x]; }
};

enum class ShapeKind { kCircle, kSquare, kTriangle };

/// A filled shape in continuous pixel coordinates.
struct ShapeGeometry {
  ShapeKind kind = ShapeKind::kCircle;
  double cx = 0, cy = 0;  // centre of the bounding square, pixels
  double extent = 0;      // side of the bounding square, pixels (circle: the diameter)

  // Exact bounds of the filled region (the triangle points up: apex top-centre, base at the
  // bottom, as wide as it is tall).
  double x1() const { return cx - extent / 2; }
  double y1() const { return cy - extent / 2; }
  double x2() const { return cx + extent / 2; }
  double y2() const { return cy + extent / 2; }
  /// Area in square pixels: circle pi/4 e^2, square e^2, triangle e^2/2.
  double area() const;
  /// True when the point lies inside the shape.
  bool contains(double x, double y) const;
};

/// Coverage of the shape over its bounding pixels, 4x4 samples per pixel.
CoverageMask shape_coverage(const ShapeGeometry& shape);

class Canvas {
 public:
  Canvas(int width, int height, Rgb background);

  int width() const { return width_; }
  int height() const { return height_; }
  /// Blends `colour` over every pixel by its coverage (pixels outside the canvas are ignored).
  void fill_coverage(const CoverageMask& mask, Rgb colour);
  /// Adds independent uniform noise in [-amplitude, amplitude] to every channel of every pixel.
  void add_noise(SynthRng& rng, double amplitude);
  /// Rounds and clamps to 8 bits.
  RgbImage to_image() const;

 private:
  int width_, height_;
  std::vector<float> rgb_;  // (height, width, 3), 0..255
};

/// PNG bytes of an image (stb_image_write; deterministic: same pixels -> same bytes).
std::string encode_png(const RgbImage& image);

}  // namespace perpo
