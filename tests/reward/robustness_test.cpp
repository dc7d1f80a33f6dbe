// Robustness: over a million random and mutated strings (random bytes, invalid UTF-8, huge
// numbers, deep brackets, special tokens) go through every parser and reward. Nothing may crash
// or throw, every score must be finite and in [0, 1], every note non-empty, every usable box
// normalised with ordered corners.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "perpo/reward/box.h"
#include "perpo/reward/reward.h"
#include "perpo/reward/text.h"
#include "perpo/reward/text_metrics.h"

namespace perpo {
namespace {

const std::vector<std::string> kSeeds = {
    "[0.61, 0.1, 0.77, 0.54]",
    "The box is [0.610, 0.10, 0.77, 0.54].",
    "[243, 40, 308, 216]",
    "(0.1,0.2),(0.3,0.4)",
    "<|box_start|>(610,100),(770,540)<|box_end|>",
    "<box>(1,2),(3,4)</box>",
    "(0.1, 0.2, 0.3, 0.4) and [0.5 0.5 0.6 0.6]",
    "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80 text",
    "The answer is -3.5e2, not 42.",
    "[nan, inf, -Infinity, 1e999]",
    "[[[[0.1, 0.2, 0.3, 0.4]]]]",
};

/// Pieces spliced into mutated strings: syntax the parsers branch on.
const std::vector<std::string> kPieces = {
    "[",
    "]",
    "(",
    ")",
    ",",
    ".",
    "-",
    "+",
    "e",
    "E",
    "e-",
    "nan",
    "inf",
    "<|box_start|>",
    "<|box_end|>",
    "<box>",
    "</box>",
    "1e999999",
    "99999999999999999999999999999",
    "0.",
    "\xC3",
    "\x80",
    "\xF0\x9F",
    "\xED\xA0\x80",
    "\xFF",
    " ",
    "\n",
    "\t",
    "\xE3\x80\x80",
};

std::string random_bytes(std::mt19937& rng, std::size_t length) {
  std::string text(length, '\0');
  for (auto& c : text) c = static_cast<char>(rng() & 0xFF);
  return text;
}

std::string mutated(std::mt19937& rng) {
  std::string text = kSeeds[rng() % kSeeds.size()];
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    std::size_t at = rng() % (text.size() + 1);
    switch (rng() % 4) {
      case 0:
        text.insert(at, kPieces[rng() % kPieces.size()]);
        break;
      case 1:
        if (at < text.size()) text.erase(at, 1 + rng() % 3);
        break;
      case 2:
        if (at < text.size()) text[at] = static_cast<char>(rng() & 0xFF);
        break;
      default:
        text.insert(at, std::string(1, "0123456789.,[]()- "[rng() % 18]));
        break;
    }
  }
  return text;
}

/// Rare, large inputs: deep brackets, endless digits, long invalid UTF-8.
std::string pathological(std::mt19937& rng) {
  std::size_t n = 1000 + rng() % 20000;
  switch (rng() % 6) {
    case 0:
      return std::string(n, '[') + "0.1, 0.2, 0.3, 0.4" + std::string(n, ']');
    case 1:
      return "[" + std::string(n, '9') + ", 0.1, 0.2, 0.3]";
    case 2:
      return "[0." + std::string(n, '1') + "e" + std::string(n % 50, '9') + ", 0, 1, 1]";
    case 3:
      return std::string(n, '(') + "1,2),(3,4)";
    case 4:
      return std::string(n, '\x80');
    default: {
      std::string text;
      while (text.size() < n) text += "[0.1, 0.2, ";  // never closed
      return text;
    }
  }
}

void check(const RewardResult& result, const std::string& input) {
  ASSERT_TRUE(std::isfinite(result.score)) << input;
  ASSERT_GE(result.score, 0.0) << input;
  ASSERT_LE(result.score, 1.0) << input;
  ASSERT_FALSE(result.note.empty()) << input;
}

TEST(Robustness, AMillionRandomAndMutatedStrings) {
  std::mt19937 rng(2025);
  const std::vector<std::string> truths = {"[0.61, 0.1, 0.77, 0.54]", "42", "hello world",
                                           "caf\xC3\xA9 \xE4\xB8\xAD"};
  const BoxParseOptions pixel_size{640, 480};
  RewardOptions options;
  std::size_t usable_boxes = 0;
  const auto& registry = reward_registry();
  for (int trial = 0; trial < 1000000; ++trial) {
    std::string input;
    unsigned kind = rng() % 1000;
    if (kind < 450) {
      input = random_bytes(rng, rng() % 48);
    } else if (kind < 999) {
      input = mutated(rng);
    } else {
      input = pathological(rng);
    }
    options.box_select = static_cast<BoxSelect>(trial % 3);
    options.lowercase = trial % 2;
    options.normalize_whitespace = trial % 5 == 0;
    options.box_parse = trial % 2 ? pixel_size : BoxParseOptions{};
    try {
      for (const auto& candidate : parse_boxes(input, options.box_parse)) {
        if (candidate.note != BoxNote::kOk) continue;
        ++usable_boxes;
        const Box& b = candidate.box;
        ASSERT_TRUE(b.x1 >= 0 && b.x1 < b.x2 && b.x2 <= 1 && b.y1 >= 0 && b.y1 < b.y2 && b.y2 <= 1)
            << input;
      }
      std::u32string points = decode_utf8(input);
      ASSERT_EQ(decode_utf8(encode_utf8(points)), points);  // decoding output is always valid
      // Every reward in turn (200k strings each), as the answer and as the ground truth.
      const RewardSpec& spec = registry[trial % registry.size()];
      const std::string& truth = truths[(trial / registry.size()) % truths.size()];
      check(spec.score(input, truth, options), input);
      check(spec.score(truth, input, options), input);
      if (trial % 8 == 0) {
        auto words = split_words(points);
        double bleu = sentence_bleu(words, split_words(U"hello world again"));
        ASSERT_TRUE(bleu >= 0 && bleu <= 1) << input;
        ASSERT_LE(word_overlap(words, {U"hello"}).f1, 1.0);
      }
    } catch (const std::exception& e) {
      FAIL() << "exception escaped on input of " << input.size() << " bytes: " << e.what();
    }
  }
  EXPECT_GT(usable_boxes, 10000u);  // the mutations kept many boxes valid: the ok path ran too
}

}  // namespace
}  // namespace perpo
