// TrueType text through stb_truetype (see synth/font.h). The single STB_TRUETYPE_IMPLEMENTATION
// of perpo lives here, private to this file.
#include "perpo/synth/font.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <vector>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"

#define STB_TRUETYPE_IMPLEMENTATION
#define STBTT_STATIC
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb_truetype.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace perpo {

namespace fs = std::filesystem;

struct Font::Impl {
  fs::path path;
  std::string bytes;  // stb_truetype reads the font in place: keep it alive
  stbtt_fontinfo info{};

  float scale(double pixel_height) const {
    return stbtt_ScaleForPixelHeight(&info, static_cast<float>(pixel_height));
  }
};

fs::path default_font_path() { return "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"; }

Font::Font(const fs::path& ttf_path) : impl_(std::make_unique<Impl>()) {
  impl_->path = ttf_path;
  std::error_code ec;
  if (!fs::is_regular_file(ttf_path, ec)) {
    throw input_error("font ", ttf_path.string(), " does not exist")
        .hint(ttf_path == default_font_path()
                  ? "install Debian's fonts-dejavu-core (./tools/setup.sh does), or pass a .ttf"
                  : "pass the path of a TrueType (.ttf) font");
  }
  impl_->bytes = read_file(ttf_path);
  const auto* data = reinterpret_cast<const unsigned char*>(impl_->bytes.data());
  const int offset = stbtt_GetFontOffsetForIndex(data, 0);
  if (offset < 0 || !stbtt_InitFont(&impl_->info, data, offset)) {
    throw input_error("font ", ttf_path.string(), " is not a TrueType font");
  }
}

Font::~Font() = default;
Font::Font(Font&&) noexcept = default;
Font& Font::operator=(Font&&) noexcept = default;

const fs::path& Font::path() const { return impl_->path; }

double Font::text_width(std::string_view text, double pixel_height) const {
  const float scale = impl_->scale(pixel_height);
  double width = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const int c = static_cast<unsigned char>(text[i]);
    int advance = 0, lsb = 0;
    stbtt_GetCodepointHMetrics(&impl_->info, c, &advance, &lsb);
    width += advance * scale;
    if (i + 1 < text.size()) {
      width += scale * stbtt_GetCodepointKernAdvance(&impl_->info, c,
                                                     static_cast<unsigned char>(text[i + 1]));
    }
  }
  return width;
}

std::pair<double, double> Font::vertical_metrics(double pixel_height) const {
  int ascent = 0, descent = 0, gap = 0;
  stbtt_GetFontVMetrics(&impl_->info, &ascent, &descent, &gap);
  const float scale = impl_->scale(pixel_height);
  return {ascent * scale, -descent * scale};
}

TextLayout Font::layout(std::string_view text, double pixel_height, double x,
                        double baseline) const {
  const float scale = impl_->scale(pixel_height);
  TextLayout out;
  std::tie(out.ascent, out.descent) = vertical_metrics(pixel_height);

  // Each glyph's bitmap box at its sub-pixel pen position.
  struct Glyph {
    int codepoint, x0, y0, x1, y1;
    float shift_x, shift_y;
    int left, top;  // canvas pixel of the box's top-left
  };
  std::vector<Glyph> glyphs;
  const double base_floor = std::floor(baseline);
  const float shift_y = static_cast<float>(baseline - base_floor);
  double pen = x;
  int min_x = INT_MAX, min_y = INT_MAX, max_x = INT_MIN, max_y = INT_MIN;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const int c = static_cast<unsigned char>(text[i]);
    Glyph g{c, 0, 0, 0, 0, static_cast<float>(pen - std::floor(pen)), shift_y, 0, 0};
    stbtt_GetCodepointBitmapBoxSubpixel(&impl_->info, c, scale, scale, g.shift_x, g.shift_y, &g.x0,
                                        &g.y0, &g.x1, &g.y1);
    g.left = static_cast<int>(std::floor(pen)) + g.x0;
    g.top = static_cast<int>(base_floor) + g.y0;
    if (g.x1 > g.x0 && g.y1 > g.y0) {
      glyphs.push_back(g);
      min_x = std::min(min_x, g.left);
      min_y = std::min(min_y, g.top);
      max_x = std::max(max_x, g.left + g.x1 - g.x0);
      max_y = std::max(max_y, g.top + g.y1 - g.y0);
    }
    int advance = 0, lsb = 0;
    stbtt_GetCodepointHMetrics(&impl_->info, c, &advance, &lsb);
    pen += advance * scale;
    if (i + 1 < text.size()) {
      pen += scale * stbtt_GetCodepointKernAdvance(&impl_->info, c,
                                                   static_cast<unsigned char>(text[i + 1]));
    }
  }
  out.advance = pen - x;
  if (glyphs.empty()) return out;

  CoverageMask& mask = out.coverage;
  mask.x0 = min_x;
  mask.y0 = min_y;
  mask.width = max_x - min_x;
  mask.height = max_y - min_y;
  mask.values.assign(static_cast<std::size_t>(mask.width) * mask.height, 0.0f);
  std::vector<unsigned char> bitmap;
  for (const Glyph& g : glyphs) {
    const int w = g.x1 - g.x0, h = g.y1 - g.y0;
    bitmap.assign(static_cast<std::size_t>(w) * h, 0);
    stbtt_MakeCodepointBitmapSubpixel(&impl_->info, bitmap.data(), w, h, w, scale, scale, g.shift_x,
                                      g.shift_y, g.codepoint);
    for (int y = 0; y < h; ++y) {
      for (int xx = 0; xx < w; ++xx) {
        float& value = mask.values[static_cast<std::size_t>(g.top - min_y + y) * mask.width +
                                   (g.left - min_x + xx)];
        // Neighbouring glyphs' antialiased edges share pixels: their coverages add up.
        value = std::min(1.0f, value + bitmap[static_cast<std::size_t>(y) * w + xx] / 255.0f);
      }
    }
  }
  // The inked extent (stb's boxes may hold empty rows/columns at the edges).
  out.ink_x1 = INT_MAX, out.ink_y1 = INT_MAX, out.ink_x2 = INT_MIN, out.ink_y2 = INT_MIN;
  for (int y = 0; y < mask.height; ++y) {
    for (int xx = 0; xx < mask.width; ++xx) {
      if (mask.at(xx, y) <= 0) continue;
      out.ink_x1 = std::min(out.ink_x1, mask.x0 + xx);
      out.ink_y1 = std::min(out.ink_y1, mask.y0 + y);
      out.ink_x2 = std::max(out.ink_x2, mask.x0 + xx + 1);
      out.ink_y2 = std::max(out.ink_y2, mask.y0 + y + 1);
    }
  }
  if (out.ink_x1 == INT_MAX) out.ink_x1 = out.ink_y1 = out.ink_x2 = out.ink_y2 = 0;
  return out;
}

}  // namespace perpo
