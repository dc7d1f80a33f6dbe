// The demo's decoding: N sampled answers per record turned into scored preference lists, and
// greedy answers on held-out records turned into the task metrics (grounding Acc@0.5, Acc@0.75,
// mean IoU; OCR edit distance and word F1), each with its standard error.
//
//   perpo::DemoDecoder decoder(*loaded.model, *loaded.tokenizer, loaded.config, config);
//   auto lists = decoder.sample_lists(records, 8, /*add_ground_truth=*/true, seed, true);
//   perpo::TaskMetrics m = decoder.evaluate(records);   // m.values["acc@0.5"], ["acc@0.5_se"]
//
// Sampling is gen's ListSampler. SEAM: greedy evaluation becomes a call to the eval module
// (`perpo eval`) once it lands; both use generate() with the shared-prefix KV cache and the
// reward registry.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/data/examples.h"
#include "perpo/data/records.h"
#include "perpo/model/llava.h"
#include "perpo/model/model_config.h"
#include "perpo/tokenizer/chat_template.h"
#include "perpo/tokenizer/tokenizer.h"

namespace perpo {

/// One task's evaluation: metric -> value ("n", "acc@0.5", "acc@0.5_se", "mean_iou", ...).
struct TaskMetrics {
  std::map<std::string, double> values;
  std::vector<std::string> predictions;  // greedy answer per record, in order
  std::vector<double> scores;            // reward per record (IoU or 1 - edit distance)
};

/// Metrics of `predictions` against the records' ground truths, by the records' task
/// ("grounding": acc@0.5, acc@0.75, mean_iou, unparsable; "ocr": edit_distance, f1, exact_match;
/// each mean also as "<name>_se", one standard error over records; "n").
TaskMetrics score_predictions(const std::vector<DatasetRecord>& records,
                              const std::vector<std::string>& predictions);

class DemoDecoder {
 public:
  /// Keeps references to every argument; they must outlive the decoder.
  DemoDecoder(LlavaModelImpl& model, const Tokenizer& tokenizer, const ModelConfig& model_config,
              const Config& config);

  /// Lists of N answers per record (gen's ListSampler, generate/sample_lists.h): answer n of
  /// record r from the stream answer_seed(record_seed(seed, id), n), scored with the task's
  /// reward; with `add_ground_truth` the ground truth joins each list (reward 1; the anchor of
  /// demo-study.md) unless a sample equals it; with `reference_logps` this model's log-probs are
  /// stored as ref_logps. `batch` records are decoded together.
  std::vector<PreferenceList> sample_lists(const std::vector<DatasetRecord>& records, int answers,
                                           bool add_ground_truth, std::uint64_t seed,
                                           bool reference_logps, int batch = 16);

  /// Greedy answers for `records`, `batch` at a time, and their metrics.
  TaskMetrics evaluate(const std::vector<DatasetRecord>& records, int batch = 32);

 private:
  std::vector<std::vector<std::string>> decode(const std::vector<DatasetRecord>& records,
                                               int answers, bool greedy, std::uint64_t seed,
                                               int batch);

  LlavaModelImpl& model_;
  const Tokenizer& tokenizer_;
  const Config& config_;
  ChatTemplate chat_;
  ExampleEncoder encoder_;
};

}  // namespace perpo
