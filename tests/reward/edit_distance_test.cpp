// UTF-8 decoding, and Levenshtein: hand-worked cases, metric properties, and the bit-parallel
// path against the plain dynamic programme on 100k random pairs (multi-byte text included).
#include <gtest/gtest.h>

#include <random>

#include "perpo/reward/edit_distance.h"
#include "perpo/reward/text.h"

namespace perpo {
namespace {

constexpr char32_t R = kReplacementChar;

TEST(Utf8, DecodesValidText) {
  // é = C3 A9 (U+00E9), € = E2 82 AC (U+20AC), 😀 = F0 9F 98 80 (U+1F600)
  EXPECT_EQ(decode_utf8("caf\xC3\xA9"), (std::u32string{U'c', U'a', U'f', 0xE9}));
  EXPECT_EQ(decode_utf8("\xE2\x82\xAC\xF0\x9F\x98\x80"), (std::u32string{0x20AC, 0x1F600}));
  EXPECT_EQ(decode_utf8(""), U"");
  EXPECT_EQ(encode_utf8(U"caf\u00E9 \u20AC\U0001F600"), "caf\xC3\xA9 \xE2\x82\xAC\xF0\x9F\x98\x80");
}

TEST(Utf8, InvalidBytesBecomeReplacementCharacters) {
  EXPECT_EQ(decode_utf8("a\x80"
                        "b"),
            (std::u32string{U'a', R, U'b'}));  // stray continuation
  EXPECT_EQ(decode_utf8("\xE2\x82"
                        "a"),
            (std::u32string{R, U'a'}));                         // truncated: one U+FFFD
  EXPECT_EQ(decode_utf8("\xF0\x9F\x98"), (std::u32string{R}));  // truncated at the end
  EXPECT_EQ(decode_utf8("\xC0\xAF"), (std::u32string{R, R}));   // overlong '/': C0 never valid
  EXPECT_EQ(decode_utf8("\xE0\x80\x80"), (std::u32string{R, R, R}));         // overlong 3-byte form
  EXPECT_EQ(decode_utf8("\xED\xA0\x80"), (std::u32string{R, R, R}));         // surrogate U+D800
  EXPECT_EQ(decode_utf8("\xF4\x90\x80\x80"), (std::u32string{R, R, R, R}));  // above U+10FFFF
  EXPECT_EQ(decode_utf8("\xFF"), (std::u32string{R}));
}

TEST(Utf8, RoundTripsRandomCodePoints) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<std::uint32_t> point(0, 0x10FFFF);
  for (int trial = 0; trial < 2000; ++trial) {
    std::u32string text;
    for (int i = 0; i < 20; ++i) {
      char32_t p = point(rng);
      if (p >= 0xD800 && p <= 0xDFFF) p = U'x';
      text.push_back(p);
    }
    ASSERT_EQ(decode_utf8(encode_utf8(text)), text);
  }
}

TEST(Utf8, Normalization) {
  EXPECT_EQ(normalize_text(U"  Hello \t\u3000World\n", {true, false}), U"Hello World");
  EXPECT_EQ(normalize_text(U"\u00C9COLE Straße", {false, true}), U"\u00E9cole straße");
  EXPECT_EQ(normalize_text(U" a  b ", {}), U" a  b ");
  EXPECT_EQ(split_words(U"  one\u00A0two  three "),
            (std::vector<std::u32string>{U"one", U"two", U"three"}));
}

TEST(Levenshtein, HandWorked) {
  // kitten -> sitten (k->s) -> sittin (e->i) -> sitting (+g): 3
  EXPECT_EQ(levenshtein(U"kitten", U"sitting"), 3u);
  EXPECT_EQ(levenshtein_dp(U"kitten", U"sitting"), 3u);
  // flaw -> law (-f) -> lawn (+n): 2
  EXPECT_EQ(levenshtein(U"flaw", U"lawn"), 2u);
  EXPECT_EQ(levenshtein(U"", U"abc"), 3u);
  EXPECT_EQ(levenshtein(U"abc", U""), 3u);
  EXPECT_EQ(levenshtein(U"same", U"same"), 0u);
  // On code points, é is ONE substitution (it is two bytes in UTF-8).
  EXPECT_EQ(levenshtein(decode_utf8("caf\xC3\xA9"), U"cafe"), 1u);
  // 70 'a' vs 70 'b': 70 substitutions, crosses a 64-bit block boundary.
  EXPECT_EQ(levenshtein(std::u32string(70, U'a'), std::u32string(70, U'b')), 70u);
  // 130 'a' vs 1 'a': 129 deletions (pattern of three blocks, text of one character).
  EXPECT_EQ(levenshtein(std::u32string(130, U'a'), U"a"), 129u);
}

/// A random string over one of several alphabets; small alphabets make many matches.
std::u32string random_text(std::mt19937& rng, std::size_t length, int alphabet) {
  static const std::u32string kMixed = U"ab c\u00E9\u4E2D\U0001F600\u20AC";
  std::u32string text;
  for (std::size_t i = 0; i < length; ++i) {
    switch (alphabet) {
      case 0:
        text.push_back(U'a' + rng() % 3);
        break;
      case 1:
        text.push_back(kMixed[rng() % kMixed.size()]);
        break;
      case 2:
        text.push_back(static_cast<char32_t>(0x20 + rng() % 95));
        break;
      default:
        text.push_back(static_cast<char32_t>(0x100 + rng() % 0x2000));
        break;
    }
  }
  return text;
}

/// `text` after a few random edits (so that distances are small as well as large).
std::u32string mutate(std::mt19937& rng, std::u32string text, int alphabet) {
  int edits = static_cast<int>(rng() % 6);
  for (int e = 0; e < edits; ++e) {
    std::u32string piece = random_text(rng, 1, alphabet);
    std::size_t at = text.empty() ? 0 : rng() % (text.size() + 1);
    switch (rng() % 3) {
      case 0:
        text.insert(at, piece);
        break;
      case 1:
        if (at < text.size()) text.erase(at, 1);
        break;
      default:
        if (at < text.size()) text[at] = piece[0];
        break;
    }
  }
  return text;
}

TEST(Levenshtein, BitParallelEqualsDynamicProgrammingOn100kPairs) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 100000; ++trial) {
    int alphabet = static_cast<int>(rng() % 4);
    // Mostly short strings; 9 % up to 150 (one to three blocks); 1 % up to 400.
    unsigned bucket = rng() % 100;
    std::size_t max_length = bucket < 90 ? 20 : (bucket < 99 ? 150 : 400);
    std::u32string a = random_text(rng, rng() % (max_length + 1), alphabet);
    std::u32string b = (rng() % 2) ? mutate(rng, a, alphabet)
                                   : random_text(rng, rng() % (max_length + 1), alphabet);
    ASSERT_EQ(levenshtein(a, b), levenshtein_dp(a, b))
        << "trial " << trial << ": " << encode_utf8(a) << " | " << encode_utf8(b);
  }
}

TEST(Levenshtein, IsAMetric) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 20000; ++trial) {
    int alphabet = static_cast<int>(rng() % 2);
    std::u32string a = random_text(rng, rng() % 12, alphabet);
    std::u32string b = mutate(rng, a, alphabet);
    std::u32string c = random_text(rng, rng() % 12, alphabet);
    std::size_t ab = levenshtein(a, b), ba = levenshtein(b, a);
    ASSERT_EQ(ab, ba);                                     // symmetry
    ASSERT_EQ(levenshtein(a, a), 0u);                      // identity
    ASSERT_EQ(ab == 0, a == b);                            // zero only for equal texts
    ASSERT_LE(levenshtein(a, c), ab + levenshtein(b, c));  // triangle inequality
    ASSERT_LE(ab, std::max(a.size(), b.size()));           // never more than the longer length
  }
}

}  // namespace
}  // namespace perpo
