// Box overlap (IoU, GIoU) and the canonical text form of a box.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "perpo/core/error.h"
#include "perpo/reward/box.h"

namespace perpo {
namespace {

/// Area of the overlap of two boxes (0 when they do not overlap).
double intersection_area(const Box& a, const Box& b) {
  double width = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  double height = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  if (width <= 0 || height <= 0) return 0.0;
  return width * height;
}

/// Area of a box that may be given with swapped corners (never negative).
double safe_area(const Box& box) {
  return std::max(0.0, box.x2 - box.x1) * std::max(0.0, box.y2 - box.y1);
}

}  // namespace

double iou(const Box& a, const Box& b) {
  double overlap = intersection_area(a, b);
  double union_area = safe_area(a) + safe_area(b) - overlap;
  if (!(union_area > 0)) return 0.0;
  // Clamp: rounding can put overlap / union a hair above 1 for identical boxes.
  return std::clamp(overlap / union_area, 0.0, 1.0);
}

double giou(const Box& a, const Box& b) {
  double overlap = intersection_area(a, b);
  double union_area = safe_area(a) + safe_area(b) - overlap;
  Box hull{std::min(a.x1, b.x1), std::min(a.y1, b.y1), std::max(a.x2, b.x2), std::max(a.y2, b.y2)};
  double hull_area = safe_area(hull);
  if (!(hull_area > 0)) return 0.0;
  double overlap_ratio = union_area > 0 ? overlap / union_area : 0.0;
  return std::clamp(overlap_ratio - (hull_area - union_area) / hull_area, -1.0, 1.0);
}

std::string format_box(const Box& box, int decimals) {
  decimals = std::clamp(decimals, 0, 17);
  std::string text = "[";
  const double values[4] = {box.x1, box.y1, box.x2, box.y2};
  char buffer[512];  // %.17f of 1e308 needs ~330 characters
  for (int i = 0; i < 4; ++i) {
    // Round half away from zero on the decimal value as written (0.125 -> "0.13"), not
    // printf's round-half-even on the binary value ("0.12"). Values that round to zero print
    // "0.00", never "-0.00".
    double value = values[i];
    double scale = std::pow(10.0, decimals);
    if (std::isfinite(value) && std::fabs(value * scale) < 1e15) {
      value = std::round(value * scale) / scale;
    }
    if (value == 0.0) value = 0.0;  // turns -0.0 into 0.0
    std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
    if (i > 0) text += ", ";
    text += buffer;
  }
  text += "]";
  return text;
}

std::string format_box_in(const Box& box, BoxUnits units, double image_width, double image_height) {
  const auto whole = [](double value) {  // half away from zero, "-0" never written
    const double rounded = std::round(value);
    return std::to_string(static_cast<long long>(rounded == 0.0 ? 0.0 : rounded));
  };
  switch (units) {
    case BoxUnits::kInfer:
    case BoxUnits::kNormalized:
      return format_box(box);
    case BoxUnits::kPixels: {
      PERPO_CHECK_INPUT(image_width > 0 && image_height > 0,
                        "a box in pixels needs the image size, got ", image_width, " x ",
                        image_height);
      return "{\"bbox_2d\": [" + whole(box.x1 * image_width) + ", " + whole(box.y1 * image_height) +
             ", " + whole(box.x2 * image_width) + ", " + whole(box.y2 * image_height) + "]}";
    }
    case BoxUnits::kScale1000:
      return "<|box_start|>(" + whole(box.x1 * 1000) + "," + whole(box.y1 * 1000) + "),(" +
             whole(box.x2 * 1000) + "," + whole(box.y2 * 1000) + ")<|box_end|>";
  }
  return format_box(box);
}

}  // namespace perpo
