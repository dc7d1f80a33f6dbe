// A TrueType font for the synthetic OCR task, rasterised with stb_truetype (antialiased).
//
//   perpo::Font font(perpo::default_font_path());     // DejaVu Sans from fonts-dejavu-core
//   perpo::TextLayout line = font.layout("red fox", /*pixel_height=*/14, /*x=*/3, /*baseline=*/30);
//   canvas.fill_coverage(line.coverage, {20, 20, 20});
//
// `pixel_height` is the distance from the font's ascent to its descent in pixels (stb_truetype's
// ScaleForPixelHeight); glyphs are placed at sub-pixel pen positions with kerning.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "perpo/synth/raster.h"

namespace perpo {

/// DejaVu Sans as Debian's fonts-dejavu-core installs it.
std::filesystem::path default_font_path();

/// A line of text laid out at a position: its antialiased coverage and its extents.
struct TextLayout {
  CoverageMask coverage;  // the inked pixels of the line
  double advance = 0;     // pen advance of the whole line, pixels
  double ascent = 0;      // font ascent above the baseline, pixels
  double descent = 0;     // font descent below the baseline (positive), pixels
  // Inked pixels: columns [ink_x1, ink_x2), rows [ink_y1, ink_y2); all 0 for blank text.
  int ink_x1 = 0, ink_y1 = 0, ink_x2 = 0, ink_y2 = 0;
};

class Font {
 public:
  /// Reads a .ttf file. Throws perpo::Error (input) naming the file when it is missing or is not
  /// a TrueType font, with a hint to install fonts-dejavu-core for the default path.
  explicit Font(const std::filesystem::path& ttf_path);
  ~Font();
  Font(Font&&) noexcept;
  Font& operator=(Font&&) noexcept;

  /// Pen advance of `text` (ASCII) at `pixel_height`, including kerning.
  double text_width(std::string_view text, double pixel_height) const;
  /// Ascent and descent (positive) at `pixel_height`.
  std::pair<double, double> vertical_metrics(double pixel_height) const;
  /// Lays out `text` with its pen starting at `x` on the baseline `baseline`.
  TextLayout layout(std::string_view text, double pixel_height, double x, double baseline) const;

  const std::filesystem::path& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace perpo
