// OCR metrics: normalised edit distance, word precision / recall / F1, BLEU-4, aggregator.
#include <gtest/gtest.h>

#include <cmath>

#include "perpo/reward/aggregate.h"
#include "perpo/reward/text.h"
#include "perpo/reward/text_metrics.h"

namespace perpo {
namespace {

std::vector<std::u32string> words(const char* text) { return split_words(decode_utf8(text)); }

TEST(TextMetrics, NormalizedEditDistance) {
  EXPECT_DOUBLE_EQ(normalized_edit_distance(U"kitten", U"sitting"), 3.0 / 7);  // 3 edits / 7
  EXPECT_DOUBLE_EQ(normalized_edit_distance(U"", U""), 0.0);
  EXPECT_DOUBLE_EQ(normalized_edit_distance(U"", U"abcd"), 1.0);  // 4 insertions / 4
}

TEST(TextMetrics, WordOverlapHandWorked) {
  // "the cat sat on the mat" vs "the cat is on the mat": matches the x2, cat, on, mat = 5 of 6
  auto overlap = word_overlap(words("the cat sat on the mat"), words("the cat is on the mat"));
  EXPECT_DOUBLE_EQ(overlap.precision, 5.0 / 6);
  EXPECT_DOUBLE_EQ(overlap.recall, 5.0 / 6);
  EXPECT_DOUBLE_EQ(overlap.f1, 5.0 / 6);
  // "a a a" vs "a b": 'a' clipped to 1 match. P = 1/3, R = 1/2, F1 = 2 * (1/6) / (5/6) = 0.4
  overlap = word_overlap(words("a a a"), words("a b"));
  EXPECT_DOUBLE_EQ(overlap.precision, 1.0 / 3);
  EXPECT_DOUBLE_EQ(overlap.recall, 0.5);
  EXPECT_DOUBLE_EQ(overlap.f1, 0.4);
  EXPECT_DOUBLE_EQ(word_overlap({}, {}).f1, 1.0);
  EXPECT_DOUBLE_EQ(word_overlap({}, words("x")).f1, 0.0);
  EXPECT_DOUBLE_EQ(word_overlap(words("x"), words("y")).f1, 0.0);
}

TEST(TextMetrics, SentenceBleuHandWorked) {
  // Identical texts: every p_n = 1, BP = 1 -> BLEU 1.
  EXPECT_DOUBLE_EQ(sentence_bleu(words("the cat sat on the mat"), words("the cat sat on the mat")),
                   1.0);
  // prediction "the cat sat on mat" (c = 5) vs reference "the cat sat on the mat" (r = 6):
  //   unigrams 5 / 5 match                 p1 = 1
  //   bigrams  the-cat cat-sat sat-on match, on-mat not: 3 / 4  -> p2 = (3+1)/(4+1) = 0.8
  //   trigrams the-cat-sat cat-sat-on match, sat-on-mat not: 2/3 -> p3 = (2+1)/(3+1) = 0.75
  //   4-grams  the-cat-sat-on matches, cat-sat-on-mat not: 1/2 -> p4 = (1+1)/(2+1) = 2/3
  //   BP = exp(1 - 6/5) = exp(-0.2);  BLEU = exp(-0.2) * (1 * 0.8 * 0.75 * 2/3)^(1/4) ~ 0.6511
  double expected = std::exp(-0.2) * std::pow(1.0 * 0.8 * 0.75 * (2.0 / 3), 0.25);
  EXPECT_NEAR(sentence_bleu(words("the cat sat on mat"), words("the cat sat on the mat")), expected,
              1e-12);
  EXPECT_NEAR(expected, 0.6511, 1e-4);
  EXPECT_EQ(sentence_bleu(words("dog"), words("the cat")), 0.0);  // p1 = 0
  EXPECT_EQ(sentence_bleu({}, words("the cat")), 0.0);
}

TEST(OcrMetrics, MeansOverPairs) {
  // Pair 1 identical: ED 0, P = R = F1 = 1, BLEU 1.  Pair 2 "ab" vs "cd": ED 2/2 = 1, no word
  // matches: 0 everywhere. Means: ED 0.5, F1 0.5, BLEU 0.5.
  OcrMetrics metrics;
  metrics.add("hello world", "hello world");
  metrics.add("ab", "cd");
  EXPECT_EQ(metrics.count(), 2u);
  EXPECT_DOUBLE_EQ(metrics.edit_distance(), 0.5);
  EXPECT_DOUBLE_EQ(metrics.f1(), 0.5);
  EXPECT_DOUBLE_EQ(metrics.precision(), 0.5);
  EXPECT_DOUBLE_EQ(metrics.recall(), 0.5);
  EXPECT_DOUBLE_EQ(metrics.bleu(), 0.5);
  EXPECT_DOUBLE_EQ(metrics.exact_match(), 0.5);
  metrics.add("Hello  world", "hello world");  // equal only once normalised
  EXPECT_DOUBLE_EQ(metrics.exact_match(), 1.0 / 3);
  OcrMetrics normalized({.collapse_whitespace = true, .lowercase = true});
  normalized.add("Hello  world", "hello world");
  EXPECT_DOUBLE_EQ(normalized.exact_match(), 1.0);
}

}  // namespace
}  // namespace perpo
