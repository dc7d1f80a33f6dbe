// Synthetic OCR: a short line of words rendered with a real font, and the text as ground truth.
//
//   perpo::Font font(perpo::default_font_path());
//   perpo::SynthRng rng = perpo::SynthRng::for_record(seed, "ocr", i);
//   perpo::OcrItem item = perpo::make_ocr_item(rng, font, {/*image_size=*/48});
//   item.text    // "red fox"
//   item.prompt  // "What text is written in the image?"
//
// Varied: the words (1-2 from a list of short English words), the font size, the position, the
// background and text colours (dark on light or light on dark, always far apart), and light
// uniform pixel noise. The line always fits inside the image with a margin.
#pragma once

#include <string>
#include <vector>

#include "perpo/image/image.h"
#include "perpo/synth/font.h"
#include "perpo/synth/random.h"

namespace perpo {

inline constexpr const char* kOcrPrompt = "What text is written in the image?";

struct OcrOptions {
  int image_size = 48;       // image side in pixels, e.g. 48
  int max_words = 2;         // words per line, 1 .. max_words, e.g. 2
  double min_height = 0.26;  // font pixel height in [min_height, max_height] x image side
  double max_height = 0.36;
  double noise = 3.0;     // uniform pixel noise amplitude in 8-bit levels, e.g. 3; 0 = none
  int margin = 2;         // pixels kept clear at every edge, e.g. 2
  int lexicon = 0;        // words drawn from this many of ocr_words() (evenly spaced); 0 = all
  double inverted = 0.3;  // share of lines drawn light on dark (the rest dark on light)
};

/// The `count` words of ocr_words() that a lexicon of that size draws from: evenly spaced over
/// the list (0 or the list's size = all of them).
std::vector<std::string> ocr_lexicon(int count);

struct OcrItem {
  RgbImage image;
  std::string text;    // the ground truth, e.g. "red fox"
  std::string prompt;  // kOcrPrompt
  Rgb background, ink;
  double pixel_height = 0;
  TextLayout layout;  // where the line was drawn (ink extent for tests)
};

/// The word list the lines are drawn from (short, lower-case, ASCII).
const std::vector<std::string>& ocr_words();

/// One random line and its image.
OcrItem make_ocr_item(SynthRng& rng, const Font& font, const OcrOptions& options = {});

}  // namespace perpo
