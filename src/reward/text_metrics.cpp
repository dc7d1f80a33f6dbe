// OCR metrics: normalised edit distance, word precision / recall / F1, sentence BLEU-4.
#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "perpo/reward/edit_distance.h"
#include "perpo/reward/text_metrics.h"

namespace perpo {
namespace {

using Words = std::vector<std::u32string>;
using NGram = std::vector<std::u32string>;

/// How often each n-gram of `words` occurs.
std::map<NGram, std::size_t> count_ngrams(const Words& words, std::size_t n) {
  std::map<NGram, std::size_t> counts;
  for (std::size_t i = 0; i + n <= words.size(); ++i) {
    ++counts[NGram(words.begin() + static_cast<std::ptrdiff_t>(i),
                   words.begin() + static_cast<std::ptrdiff_t>(i + n))];
  }
  return counts;
}

/// Predicted n-grams that also occur in the reference, each clipped to its reference count.
std::size_t clipped_matches(const Words& predicted, const Words& reference, std::size_t n) {
  auto predicted_counts = count_ngrams(predicted, n);
  auto reference_counts = count_ngrams(reference, n);
  std::size_t matches = 0;
  for (const auto& [gram, count] : predicted_counts) {
    auto it = reference_counts.find(gram);
    if (it != reference_counts.end()) matches += std::min(count, it->second);
  }
  return matches;
}

}  // namespace

double normalized_edit_distance(std::u32string_view prediction, std::u32string_view reference) {
  std::size_t longer = std::max(prediction.size(), reference.size());
  if (longer == 0) return 0.0;
  return static_cast<double>(levenshtein(prediction, reference)) / static_cast<double>(longer);
}

WordOverlap word_overlap(const Words& predicted, const Words& reference) {
  WordOverlap overlap;
  if (predicted.empty() && reference.empty()) return {1.0, 1.0, 1.0};
  if (predicted.empty() || reference.empty()) return overlap;
  std::size_t matches = clipped_matches(predicted, reference, 1);
  overlap.precision = static_cast<double>(matches) / static_cast<double>(predicted.size());
  overlap.recall = static_cast<double>(matches) / static_cast<double>(reference.size());
  double sum = overlap.precision + overlap.recall;
  overlap.f1 = sum > 0 ? 2 * overlap.precision * overlap.recall / sum : 0.0;
  return overlap;
}

double sentence_bleu(const Words& predicted, const Words& reference) {
  if (predicted.empty() || reference.empty()) return 0.0;
  double log_precision_sum = 0;
  for (std::size_t n = 1; n <= 4; ++n) {
    double matches = static_cast<double>(clipped_matches(predicted, reference, n));
    double total = predicted.size() >= n ? static_cast<double>(predicted.size() - n + 1) : 0.0;
    if (n == 1) {
      if (matches == 0) return 0.0;
      log_precision_sum += std::log(matches / total);
    } else {
      log_precision_sum += std::log((matches + 1) / (total + 1));
    }
  }
  double c = static_cast<double>(predicted.size());
  double r = static_cast<double>(reference.size());
  double brevity_penalty = c > r ? 1.0 : std::exp(1.0 - r / c);
  return brevity_penalty * std::exp(log_precision_sum / 4.0);
}

}  // namespace perpo
