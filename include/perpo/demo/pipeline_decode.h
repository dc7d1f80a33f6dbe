// The demo's decoding: N sampled answers per record turned into scored preference lists, and
// greedy answers on held-out records turned into the task metrics (grounding Acc@0.5, Acc@0.75,
// mean IoU, unparsable; OCR edit distance, word F1, exact match), each with its standard error.
//
//   perpo::DemoDecoder decoder(*loaded.model, *loaded.tokenizer, config);
//   auto lists = decoder.sample_lists(records, 8, /*add_ground_truth=*/true, seed, true);
//   perpo::TaskMetrics m = decoder.evaluate(records);   // m.values["acc@0.5"], ["acc@0.5_se"]
//
// Sampling is gen's ListSampler (generate/sample_lists.h); evaluation is the eval module's
// evaluate() and eval_metrics() (eval/evaluate.h), the code behind `perpo eval`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/data/records.h"
#include "perpo/model/vlm.h"
#include "perpo/tokenizer/tokenizer.h"

namespace perpo {

/// One task's evaluation: metric -> value ("n", "acc@0.5", "acc@0.5_se", "mean_iou", ...).
struct TaskMetrics {
  std::map<std::string, double> values;
  std::vector<std::string> predictions;  // greedy answer per record, in order
  std::vector<double> scores;            // the task's default reward per record (IoU, ocr_edit)
};

class DemoDecoder {
 public:
  /// Keeps references to every argument; they must outlive the decoder.
  DemoDecoder(VisionLanguageModel& model, const TextTokenizer& tokenizer, const Config& config);

  /// Lists of N answers per record (gen's ListSampler, generate/sample_lists.h): answer n of
  /// record r from the stream answer_seed(record_seed(seed, id), n), scored with the task's
  /// reward; with `add_ground_truth` the ground truth joins each list (reward 1; the anchor of
  /// demo-study.md) unless a sample equals it; with `reference_logps` this model's log-probs are
  /// stored as ref_logps. `batch` records are decoded together.
  std::vector<PreferenceList> sample_lists(const std::vector<DatasetRecord>& records, int answers,
                                           bool add_ground_truth, std::uint64_t seed,
                                           bool reference_logps, int batch = 16);

  /// Greedy answers for `records` (all of one task), `batch` at a time, scored by the task's
  /// default reward, and the demo's metrics of that task: grounding acc@0.5, acc@0.75, mean_iou,
  /// unparsable; ocr edit_distance, f1, exact_match; each with "<name>_se"; "n" records.
  TaskMetrics evaluate(const std::vector<DatasetRecord>& records, int batch = 32);

 private:
  VisionLanguageModel& model_;
  const TextTokenizer& tokenizer_;
  const Config& config_;
};

}  // namespace perpo
