// Synthetic OCR lines (see synth/ocr.h).
#include "perpo/synth/ocr.h"

#include <algorithm>
#include <cmath>

#include "perpo/core/error.h"

namespace perpo {

namespace {

// Short common English words, 2-5 letters, so that one or two fit a small image.
const char* const kWords[] = {
    "a",    "an",   "and",  "ant",   "arm",  "art",  "bag",  "bat",  "bed",  "bee",  "big",  "bird",
    "blue", "boat", "book", "box",   "boy",  "bus",  "cake", "cap",  "car",  "cat",  "cold", "cow",
    "cup",  "day",  "deep", "desk",  "dog",  "door", "dry",  "duck", "ear",  "egg",  "eye",  "fan",
    "far",  "fast", "fig",  "fish",  "five", "fly",  "fog",  "fox",  "frog", "fun",  "gate", "gift",
    "goat", "gold", "good", "green", "hat",  "hen",  "hill", "home", "hot",  "ice",  "ink",  "jam",
    "jar",  "joy",  "key",  "kid",   "kite", "lake", "lamp", "leaf", "left", "leg",  "lid",  "lime",
    "lion", "log",  "low",  "map",   "milk", "moon", "mud",  "nest", "net",  "new",  "nine", "nose",
    "nut",  "oak",  "old",  "one",   "owl",  "pan",  "park", "pen",  "pet",  "pie",  "pig",  "pin",
    "pot",  "rain", "red",  "ring",  "road", "rock", "roof", "rose", "run",  "sad",  "salt", "sand",
    "sea",  "seed", "ship", "shoe",  "six",  "sky",  "slow", "snow", "sock", "soft", "star", "sun",
    "tall", "tea",  "ten",  "tent",  "tiny", "toe",  "top",  "town", "tree", "two",  "van",  "warm",
    "web",  "wet",  "wind", "wing",  "wolf", "wood", "yak",  "zoo",
};

std::uint8_t channel(SynthRng& rng, int low, int high) {
  return static_cast<std::uint8_t>(rng.between(low, high));
}

// Background and ink far apart: dark ink on a light ground, or (a share `inverted` of the lines)
// light ink on a dark one.
void pick_colours(SynthRng& rng, double inverted, Rgb& background, Rgb& ink) {
  do {
    if (rng.chance(1.0 - inverted)) {
      background = {channel(rng, 185, 255), channel(rng, 185, 255), channel(rng, 185, 255)};
      ink = {channel(rng, 0, 110), channel(rng, 0, 110), channel(rng, 0, 110)};
    } else {
      background = {channel(rng, 0, 80), channel(rng, 0, 80), channel(rng, 0, 80)};
      ink = {channel(rng, 175, 255), channel(rng, 175, 255), channel(rng, 175, 255)};
    }
  } while (colour_distance(background, ink) < 200);
}

}  // namespace

const std::vector<std::string>& ocr_words() {
  static const std::vector<std::string> words(std::begin(kWords), std::end(kWords));
  return words;
}

std::vector<std::string> ocr_lexicon(int count) {
  const std::vector<std::string>& words = ocr_words();
  const int size = static_cast<int>(words.size());
  PERPO_CHECK_INPUT(count >= 0 && count <= size, "an OCR lexicon holds 0 (all) .. ", size,
                    " words, got ", count);
  if (count == 0 || count == size) return words;
  std::vector<std::string> chosen;
  for (int i = 0; i < count; ++i)
    chosen.push_back(words[static_cast<std::size_t>(i) * size / count]);
  return chosen;
}

OcrItem make_ocr_item(SynthRng& rng, const Font& font, const OcrOptions& options) {
  PERPO_CHECK_INPUT(options.image_size >= 16, "synthetic OCR images need at least 16 px, got ",
                    options.image_size);
  PERPO_CHECK_INPUT(options.max_words >= 1, "synthetic OCR needs max_words >= 1, got ",
                    options.max_words);
  OcrItem item;
  item.prompt = kOcrPrompt;
  const double side = options.image_size;
  const double room = side - 2.0 * options.margin;
  const std::vector<std::string> words = ocr_lexicon(options.lexicon);

  // Font size first, then words until the line fits (fewer words, or a smaller size, if not).
  item.pixel_height = side * rng.uniform(options.min_height, options.max_height);
  const int wanted = rng.between(1, options.max_words);
  double width = 0;
  for (int attempt = 0;; ++attempt) {
    item.text.clear();
    const int count = std::max(1, wanted - attempt / 8);
    for (int w = 0; w < count; ++w) item.text += (w ? " " : "") + rng.pick(words);
    width = font.text_width(item.text, item.pixel_height);
    if (width <= room) break;
    if (attempt >= 40) item.pixel_height *= 0.9;  // only for very small images
    PERPO_CHECK(attempt < 200, "cannot fit any word into a ", options.image_size, " px image");
  }
  const auto [ascent, descent] = font.vertical_metrics(item.pixel_height);
  const double x = options.margin + rng.uniform(0, room - width);
  const double top_room = std::max(0.0, room - (ascent + descent));
  const double baseline = options.margin + ascent + rng.uniform(0, top_room);

  pick_colours(rng, options.inverted, item.background, item.ink);
  Canvas canvas(options.image_size, options.image_size, item.background);
  item.layout = font.layout(item.text, item.pixel_height, x, baseline);
  canvas.fill_coverage(item.layout.coverage, item.ink);
  canvas.add_noise(rng, options.noise);
  item.image = canvas.to_image();
  return item;
}

}  // namespace perpo
