// Aggregators that turn per-answer scores into the metrics of metrics.json (interfaces.md):
// grounding `acc@0.5`, `mean_iou`, `unparsable`; OCR `edit_distance`, `f1`, `precision`,
// `recall`, `bleu`, `exact_match`. Each metric is the mean of a per-answer value, kept in a
// MeanTally that also gives its standard error.
//
//   perpo::GroundingMetrics grounding;             // threshold 0.5 unless given
//   for (...) grounding.add(perpo::reward_iou(answer, truth, options));
//   grounding.accuracy();                          // share of answers with IoU >= 0.5
//   grounding.tallies().hits.standard_error();     // its standard error over answers
#pragma once

#include <cstddef>
#include <string_view>

#include "perpo/reward/reward.h"
#include "perpo/reward/text.h"

namespace perpo {

/// The mean of values added one at a time and its standard error (Welford's running variance).
class MeanTally {
 public:
  void add(double value);

  std::size_t count() const { return count_; }
  /// 0 when empty.
  double mean() const { return mean_; }
  /// Sample standard deviation / sqrt(count); 0 with fewer than two values.
  double standard_error() const;

 private:
  std::size_t count_ = 0;
  double mean_ = 0;
  double squares_ = 0;  // sum of squared deviations from the running mean
};

class GroundingMetrics {
 public:
  /// Per-answer values: hit (IoU >= threshold, 1 or 0), IoU, unparsable (1 or 0).
  struct Tallies {
    MeanTally hits, iou, unparsable;
  };

  explicit GroundingMetrics(double threshold = 0.5) : threshold_(threshold) {}

  /// Adds one answer scored by reward_iou: its score is the IoU (0 when unparsable).
  void add(const RewardResult& iou_result);
  /// Adds one answer by its IoU; `parsed` false counts it as unparsable (its IoU should be 0).
  void add(double iou_value, bool parsed = true);

  std::size_t count() const { return tallies_.iou.count(); }
  double threshold() const { return threshold_; }
  /// Acc@threshold: share of answers with IoU >= threshold; 0 when empty.
  double accuracy() const { return tallies_.hits.mean(); }
  /// Mean IoU over all answers (unparsable ones count as 0); 0 when empty.
  double mean_iou() const { return tallies_.iou.mean(); }
  /// Share of answers without a usable box.
  double unparsable() const { return tallies_.unparsable.mean(); }
  const Tallies& tallies() const { return tallies_; }

 private:
  double threshold_;
  Tallies tallies_;
};

class OcrMetrics {
 public:
  /// Per-pair values; exact_match is 1 when the normalised texts are equal.
  struct Tallies {
    MeanTally edit_distance, precision, recall, f1, bleu, exact_match;
  };

  explicit OcrMetrics(TextNormalization normalization = {}) : normalization_(normalization) {}

  /// Adds one prediction / reference pair (UTF-8).
  void add(std::string_view prediction, std::string_view reference);

  std::size_t count() const { return tallies_.f1.count(); }
  /// Means over the pairs added (0 when empty). edit_distance is normalised (lower is better).
  double edit_distance() const { return tallies_.edit_distance.mean(); }
  double precision() const { return tallies_.precision.mean(); }
  double recall() const { return tallies_.recall.mean(); }
  double f1() const { return tallies_.f1.mean(); }
  double bleu() const { return tallies_.bleu.mean(); }
  double exact_match() const { return tallies_.exact_match.mean(); }
  const Tallies& tallies() const { return tallies_; }

 private:
  TextNormalization normalization_;
  Tallies tallies_;
};

}  // namespace perpo
