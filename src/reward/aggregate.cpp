// Metric aggregators (aggregate.h).
#include "perpo/reward/aggregate.h"

#include <cmath>

#include "perpo/reward/text_metrics.h"

namespace perpo {

void MeanTally::add(double value) {
  ++count_;
  const double delta = value - mean_;
  mean_ += delta / static_cast<double>(count_);
  squares_ += delta * (value - mean_);
}

double MeanTally::standard_error() const {
  if (count_ < 2) return 0.0;
  const double n = static_cast<double>(count_);
  return std::sqrt(squares_ / (n - 1) / n);
}

void GroundingMetrics::add(const RewardResult& iou_result) {
  add(iou_result.score, iou_result.note == "ok");
}

void GroundingMetrics::add(double iou_value, bool parsed) {
  tallies_.hits.add(iou_value >= threshold_ ? 1.0 : 0.0);
  tallies_.iou.add(iou_value);
  tallies_.unparsable.add(parsed ? 0.0 : 1.0);
}

void OcrMetrics::add(std::string_view prediction, std::string_view reference) {
  std::u32string predicted = normalize_text(decode_utf8(prediction), normalization_);
  std::u32string expected = normalize_text(decode_utf8(reference), normalization_);
  auto predicted_words = split_words(predicted);
  auto reference_words = split_words(expected);
  WordOverlap overlap = word_overlap(predicted_words, reference_words);
  tallies_.edit_distance.add(normalized_edit_distance(predicted, expected));
  tallies_.precision.add(overlap.precision);
  tallies_.recall.add(overlap.recall);
  tallies_.f1.add(overlap.f1);
  tallies_.bleu.add(sentence_bleu(predicted_words, reference_words));
  tallies_.exact_match.add(predicted == expected ? 1.0 : 0.0);
}

}  // namespace perpo
