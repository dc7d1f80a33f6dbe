// OCR metrics of a predicted text against its reference, on Unicode code points / words.
//
//   normalized_edit_distance(U"kitten", U"sitting") == 3.0 / 7   // Levenshtein / longer length
//   word_overlap(split_words(U"a b c"), split_words(U"a b d")).f1 == 2.0 / 3
//   sentence_bleu(...)                                          // BLEU-4, smoothing below
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace perpo {

/// Levenshtein distance divided by the longer length, in [0, 1]; 0 when both texts are empty.
/// The OCR reward is 1 - this (method.md).
double normalized_edit_distance(std::u32string_view prediction, std::u32string_view reference);

struct WordOverlap {
  double precision = 0;  // matched words / predicted words
  double recall = 0;     // matched words / reference words
  double f1 = 0;         // harmonic mean of the two; 0 when both are 0
};

/// Word-level precision / recall / F1 with words matched as multisets (bag of words): a word
/// predicted twice matches at most as often as it occurs in the reference. Empty prediction and
/// empty reference: all three are 1 (nothing to find, nothing wrong); one of them empty: all 0.
WordOverlap word_overlap(const std::vector<std::u32string>& predicted,
                         const std::vector<std::u32string>& reference);

/// Sentence-level BLEU-4 (Papineni et al. 2002) of one prediction against one reference:
///   BLEU = BP * exp(mean_{n=1..4} log p_n),  BP = 1 if c > r else exp(1 - r / c),
/// c, r the predicted / reference word counts and p_n the clipped n-gram precisions.
/// Smoothing (Lin & Och 2004, "add one" for n >= 2): p_1 = matches_1 / total_1 unsmoothed;
/// p_n = (matches_n + 1) / (total_n + 1) for n = 2..4. Returns 0 when the prediction is empty
/// or shares no word with the reference (p_1 = 0), and 1 for two identical non-empty texts.
double sentence_bleu(const std::vector<std::u32string>& predicted,
                     const std::vector<std::u32string>& reference);

}  // namespace perpo
