// Aggregators that turn per-answer scores into the metrics of metrics.json (interfaces.md):
// grounding `acc@0.5`, `mean_iou`, `unparsable`; OCR `edit_distance`, `f1`, `precision`,
// `recall`, `bleu`.
//
//   perpo::GroundingMetrics grounding;             // threshold 0.5 unless given
//   for (...) grounding.add(perpo::reward_iou(answer, truth, options));
//   grounding.accuracy();   // share of answers with IoU >= 0.5
#pragma once

#include <cstddef>
#include <string_view>

#include "perpo/reward/reward.h"
#include "perpo/reward/text.h"

namespace perpo {

class GroundingMetrics {
 public:
  explicit GroundingMetrics(double threshold = 0.5) : threshold_(threshold) {}

  /// Adds one answer scored by reward_iou: its score is the IoU (0 when unparsable).
  void add(const RewardResult& iou_result);
  /// Adds one answer by its IoU; `parsed` false counts it as unparsable (its IoU should be 0).
  void add(double iou_value, bool parsed = true);

  std::size_t count() const { return count_; }
  double threshold() const { return threshold_; }
  /// Acc@threshold: share of answers with IoU >= threshold; 0 when empty.
  double accuracy() const;
  /// Mean IoU over all answers (unparsable ones count as 0); 0 when empty.
  double mean_iou() const;
  /// Share of answers without a usable box.
  double unparsable() const;

 private:
  double threshold_;
  std::size_t count_ = 0;
  std::size_t hits_ = 0;
  std::size_t unparsable_ = 0;
  double iou_sum_ = 0;
};

class OcrMetrics {
 public:
  explicit OcrMetrics(TextNormalization normalization = {}) : normalization_(normalization) {}

  /// Adds one prediction / reference pair (UTF-8).
  void add(std::string_view prediction, std::string_view reference);

  std::size_t count() const { return count_; }
  /// Means over the pairs added (0 when empty). edit_distance is normalised (lower is better).
  double edit_distance() const { return mean(edit_sum_); }
  double precision() const { return mean(precision_sum_); }
  double recall() const { return mean(recall_sum_); }
  double f1() const { return mean(f1_sum_); }
  double bleu() const { return mean(bleu_sum_); }

 private:
  double mean(double sum) const { return count_ ? sum / static_cast<double>(count_) : 0.0; }

  TextNormalization normalization_;
  std::size_t count_ = 0;
  double edit_sum_ = 0, precision_sum_ = 0, recall_sum_ = 0, f1_sum_ = 0, bleu_sum_ = 0;
};

}  // namespace perpo
