// Synthetic OCR and drawing: the text is really rendered (ink inside the text's region, plain
// background everywhere else), glyphs come from the font, coverage antialiasing is area-true, and
// PNGs decode back to the same pixels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "perpo/core/error.h"
#include "perpo/image/image.h"
#include "perpo/synth/font.h"
#include "perpo/synth/ocr.h"
#include "perpo/synth/raster.h"
#include "test_util.h"

namespace perpo {
namespace {

const Font& dejavu() {
  static const Font font(default_font_path());
  return font;
}

Rgb pixel(const RgbImage& image, int x, int y) {
  const std::uint8_t* p = &image.pixels[(static_cast<std::size_t>(y) * image.width + x) * 3];
  return {p[0], p[1], p[2]};
}

TEST(SynthOcr, TextIsRenderedInsideItsRegionAndNowhereElse) {
  std::set<std::string> texts;
  std::set<int> word_counts;
  for (int index = 0; index < 120; ++index) {
    SynthRng rng = SynthRng::for_record(3, "ocr", index);
    OcrOptions options;
    options.noise = 0;
    const OcrItem item = make_ocr_item(rng, dejavu(), options);
    const TextLayout& ink = item.layout;
    texts.insert(item.text);
    word_counts.insert(item.text.find(' ') == std::string::npos ? 1 : 2);
    EXPECT_EQ(item.prompt, "What text is written in the image?");
    ASSERT_GT(ink.ink_x2, ink.ink_x1) << item.text;
    EXPECT_GE(ink.ink_x1, 0);
    EXPECT_GE(ink.ink_y1, 0);
    EXPECT_LE(ink.ink_x2, item.image.width);
    EXPECT_LE(ink.ink_y2, item.image.height);
    int strong = 0, region = 0;
    for (int y = 0; y < item.image.height; ++y) {
      for (int x = 0; x < item.image.width; ++x) {
        const bool inside = x >= ink.ink_x1 && x < ink.ink_x2 && y >= ink.ink_y1 && y < ink.ink_y2;
        const double d = colour_distance(pixel(item.image, x, y), item.background);
        if (!inside) {
          ASSERT_EQ(d, 0) << "ink outside the text region at (" << x << ", " << y << ") for '"
                          << item.text << "'";
          continue;
        }
        ++region;
        strong += d > 0.5 * colour_distance(item.ink, item.background);
      }
    }
    // Glyph strokes cover a good part of a line's box (DejaVu Sans: about a quarter to a half).
    EXPECT_GT(strong, 0.12 * region) << "'" << item.text << "' is barely drawn";
    EXPECT_LT(strong, 0.85 * region) << "'" << item.text << "' is a blob, not text";
  }
  EXPECT_GE(texts.size(), 85u);  // 1-2 of ~140 words: some repeats
  EXPECT_EQ(word_counts, (std::set<int>{1, 2}));
}

TEST(SynthOcr, LexiconHeightAndInversionShapeTheLines) {
  // A lexicon of 16: 16 distinct words evenly spaced over the list, the first word first.
  const std::vector<std::string> lexicon = ocr_lexicon(16);
  ASSERT_EQ(lexicon.size(), 16u);
  EXPECT_EQ(std::set<std::string>(lexicon.begin(), lexicon.end()).size(), 16u);
  EXPECT_EQ(lexicon[0], ocr_words()[0]);
  EXPECT_EQ(lexicon[1], ocr_words()[ocr_words().size() / 16]);
  EXPECT_EQ(ocr_lexicon(0), ocr_words());
  EXPECT_NE(
      test::error_of([] { ocr_lexicon(static_cast<int>(ocr_words().size()) + 1); }).find("lexicon"),
      std::string::npos);

  const double side = 48;
  for (const double inverted : {0.0, 1.0}) {
    std::set<std::string> seen;
    for (int index = 0; index < 80; ++index) {
      SynthRng rng = SynthRng::for_record(5, "ocr", index);
      OcrOptions options;
      options.lexicon = 16;
      options.max_words = 1;
      options.min_height = 0.45;
      options.max_height = 0.55;
      options.inverted = inverted;
      const OcrItem item = make_ocr_item(rng, dejavu(), options);
      seen.insert(item.text);
      auto brightness = [](const Rgb& c) { return int{c.r} + c.g + c.b; };
      // inverted 0: every line dark on light; 1: every line light on dark.
      EXPECT_EQ(brightness(item.background) > brightness(item.ink), inverted == 0.0) << index;
      // The height is drawn from [0.45, 0.55] x side, shrunk only when a word does not fit.
      EXPECT_LE(item.pixel_height, 0.55 * side + 1e-9) << item.text;
      const bool fits_at_min = dejavu().text_width(item.text, 0.45 * side) <= side - 4;
      if (fits_at_min) {
        EXPECT_GE(item.pixel_height, 0.45 * side - 1e-9) << item.text;
      }
    }
    for (const auto& text : seen) {
      EXPECT_NE(std::find(lexicon.begin(), lexicon.end(), text), lexicon.end()) << text;
    }
    EXPECT_GE(seen.size(), 12u);  // 80 draws of 16 words
  }
}

TEST(SynthOcr, GlyphsComeFromTheFont) {
  // Same size and pen: "m" is wider than "i", "ill" narrower than "mmm", and distinct words ink
  // different pixels.
  const double h = 16;
  EXPECT_GT(dejavu().text_width("m", h), 1.8 * dejavu().text_width("i", h));
  const TextLayout fox = dejavu().layout("fox", h, 2, 20);
  const TextLayout dog = dejavu().layout("dog", h, 2, 20);
  const TextLayout mmm = dejavu().layout("mmm", h, 2, 20);
  const TextLayout ill = dejavu().layout("ill", h, 2, 20);
  EXPECT_GT(mmm.ink_x2 - mmm.ink_x1, 2 * (ill.ink_x2 - ill.ink_x1));
  EXPECT_NE(fox.coverage.values, dog.coverage.values);
  // "g" descends below the baseline, "o" does not; "f" rises above "o".
  EXPECT_GT(dejavu().layout("g", h, 2, 20).ink_y2, 20);
  EXPECT_LE(dejavu().layout("o", h, 2, 20).ink_y2, 21);
  EXPECT_LT(dejavu().layout("f", h, 2, 20).ink_y1, dejavu().layout("o", h, 2, 20).ink_y1 - 2);
}

TEST(SynthOcr, MissingFontIsAClearInputError) {
  try {
    Font font("/no/such/font.ttf");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error());
    EXPECT_NE(std::string(e.what()).find("/no/such/font.ttf"), std::string::npos) << e.what();
  }
}

TEST(SynthRaster, CoverageIsAreaTrue) {
  // Circle of diameter 10: pi * 25 = 78.54 px^2; triangle 12 wide, 12 tall: 72; square 6: 36.
  const auto total = [](const CoverageMask& m) {
    double sum = 0;
    for (float v : m.values) sum += v;
    return sum;
  };
  EXPECT_NEAR(total(shape_coverage({ShapeKind::kCircle, 20.3, 17.7, 10})), 78.54, 1.0);
  EXPECT_NEAR(total(shape_coverage({ShapeKind::kTriangle, 20.5, 20.5, 12})), 72.0, 1.0);
  // A square on whole pixels: x 7..13, y 3..9 -> exactly 36 full pixels, nothing partial.
  const CoverageMask square = shape_coverage({ShapeKind::kSquare, 10, 6, 6});
  EXPECT_EQ(square.x0, 7);
  EXPECT_EQ(square.width, 6);
  for (float v : square.values) EXPECT_EQ(v, 1.0f);
  // Edge pixels of an off-grid square are partial: x 7.5 .. 13.5 -> half coverage at columns 7, 13.
  const CoverageMask half = shape_coverage({ShapeKind::kSquare, 10.5, 6, 6});
  EXPECT_FLOAT_EQ(half.at(0, 2), 0.5f);
  EXPECT_FLOAT_EQ(half.at(half.width - 1, 2), 0.5f);
  EXPECT_FLOAT_EQ(half.at(3, 2), 1.0f);
}

TEST(SynthRaster, PngRoundTripsThroughTheDecoder) {
  Canvas canvas(20, 12, {10, 200, 30});
  canvas.fill_coverage(shape_coverage({ShapeKind::kCircle, 8.3, 6.1, 7}), {250, 5, 90});
  SynthRng rng(5);
  canvas.add_noise(rng, 4);
  const RgbImage image = canvas.to_image();
  const std::string png = encode_png(image);
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  const RgbImage back =
      decode_image(reinterpret_cast<const std::uint8_t*>(png.data()), png.size(), "synth.png");
  EXPECT_EQ(back.width, 20);
  EXPECT_EQ(back.height, 12);
  EXPECT_EQ(back.pixels, image.pixels);
  EXPECT_EQ(encode_png(image), png);  // deterministic bytes
}

TEST(SynthRandom, StreamsAreReproducibleAndIndependent) {
  SynthRng a = SynthRng::for_record(1, "ocr", 5), b = SynthRng::for_record(1, "ocr", 5);
  SynthRng c = SynthRng::for_record(1, "ocr", 6), d = SynthRng::for_record(1, "grounding", 5);
  SynthRng e = SynthRng::for_record(2, "ocr", 5);
  const std::uint64_t first = a.next_u64();
  EXPECT_EQ(first, b.next_u64());
  EXPECT_NE(first, c.next_u64());
  EXPECT_NE(first, d.next_u64());
  EXPECT_NE(first, e.next_u64());
  SynthRng rng(11);
  std::vector<int> counts(5, 0);
  double sum = 0;
  for (int i = 0; i < 20000; ++i) {
    counts[rng.below(5)]++;
    sum += rng.uniform();
  }
  for (int count : counts) EXPECT_NEAR(count, 4000, 300);  // ~5 standard deviations
  EXPECT_NEAR(sum / 20000, 0.5, 0.01);
}

}  // namespace
}  // namespace perpo
