// Metric aggregators (aggregate.h).
#include "perpo/reward/aggregate.h"

#include "perpo/reward/text_metrics.h"

namespace perpo {

void GroundingMetrics::add(const RewardResult& iou_result) {
  add(iou_result.score, iou_result.note == "ok");
}

void GroundingMetrics::add(double iou_value, bool parsed) {
  ++count_;
  if (!parsed) ++unparsable_;
  if (iou_value >= threshold_) ++hits_;
  iou_sum_ += iou_value;
}

double GroundingMetrics::accuracy() const {
  return count_ ? static_cast<double>(hits_) / static_cast<double>(count_) : 0.0;
}

double GroundingMetrics::mean_iou() const {
  return count_ ? iou_sum_ / static_cast<double>(count_) : 0.0;
}

double GroundingMetrics::unparsable() const {
  return count_ ? static_cast<double>(unparsable_) / static_cast<double>(count_) : 0.0;
}

void OcrMetrics::add(std::string_view prediction, std::string_view reference) {
  std::u32string predicted = normalize_text(decode_utf8(prediction), normalization_);
  std::u32string expected = normalize_text(decode_utf8(reference), normalization_);
  auto predicted_words = split_words(predicted);
  auto reference_words = split_words(expected);
  WordOverlap overlap = word_overlap(predicted_words, reference_words);
  ++count_;
  edit_sum_ += normalized_edit_distance(predicted, expected);
  precision_sum_ += overlap.precision;
  recall_sum_ += overlap.recall;
  f1_sum_ += overlap.f1;
  bleu_sum_ += sentence_bleu(predicted_words, reference_words);
}

}  // namespace perpo
