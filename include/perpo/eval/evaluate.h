// Evaluation: greedy answers for dataset records and the metrics of each task (interfaces.md).
//
//   perpo::RecordPrompts prompts(model->config(), tokenizer, config);
//   perpo::EvalResult result = perpo::evaluate(*model, prompts, records, config);
//   result.metrics["grounding"]["acc@0.5"];              // also mean_iou, unparsable, count
//   perpo::write_eval_outputs(result, "runs/x");          // predictions.jsonl + metrics.json
//
// Metrics by task: grounding -> acc@<eval.iou_threshold> (acc@0.5) and acc@0.75, mean_iou,
// unparsable (share of answers without a usable box); ocr -> edit_distance (normalised, lower is
// better), f1, precision, recall (word level), bleu (BLEU-4), exact_match; every task ->
// mean_reward (by reward.name, or the task's default reward). Each of these is a mean over the
// task's records and comes with "<name>_se", one standard error of that mean. Each task's object
// carries its record count ("count"); the top level adds records, evaluated, skipped.
// Settings: eval.{max_new_tokens, batch_size, iou_threshold, limit}, reward.*, data.on_bad_record.
#pragma once

#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/data/records.h"
#include "perpo/dist/process_group.h"
#include "perpo/generate/generator.h"
#include "perpo/generate/record_prompts.h"
#include "perpo/model/vlm.h"

namespace perpo {

/// One record's greedy answer and its score.
struct Prediction {
  std::string id;
  std::string task;
  std::string answer;
  std::string ground_truth;
  double reward = 0;          // by reward.name, or the task's default reward (iou, ocr_edit)
  std::string note;           // the reward's note: ok, no_box, ...
  BoxParseOptions box_parse;  // how the answer's boxes were read (the family's units, frame)

  nlohmann::json to_json() const;  // {"id", "task", "answer", "ground_truth", "reward", "notes"}
};

struct EvalResult {
  std::vector<Prediction> predictions;  // in record order (skipped records left out)
  nlohmann::json metrics;               // see the file comment
  std::vector<std::string> skipped;     // messages of bad records left out
  GenerationStats stats;
  double seconds = 0;
};

/// Greedy answers for `records` (the first eval.limit when > 0), eval.batch_size decoded together,
/// scored and aggregated. Bad records throw perpo::Error (input) naming them, or are skipped and
/// counted with data.on_bad_record=skip. `show_progress` draws a progress bar.
/// Data parallel (`group` of W > 1 ranks, every rank calls it): batch b (of eval.batch_size
/// records, the batches of one process) is decoded by rank b % W, and rank 0 gathers every
/// rank's predictions in record order and computes the metrics: its result is one process's. The
/// other ranks' results hold their own predictions only, without metrics.
EvalResult evaluate(VisionLanguageModel& model, RecordPrompts& prompts,
                    const std::vector<DatasetRecord>& records, const Config& config,
                    bool show_progress = false, const ProcessGroup* group = nullptr);

/// The metrics of scored predictions (see the file comment); records / evaluated count them and
/// skipped is 0 (evaluate() sets both from the records it was given).
nlohmann::json eval_metrics(const std::vector<Prediction>& predictions, const Config& config);

/// `metrics` flattened to "task/name" keys ("grounding/acc@0.5"), e.g. for metrics.jsonl lines.
nlohmann::json flat_metrics(const nlohmann::json& metrics);

/// Writes <dir>/predictions.jsonl and <dir>/metrics.json, each atomically.
void write_eval_outputs(const EvalResult& result, const std::filesystem::path& dir);

/// A few lines for the terminal: the metrics of each task with their counts.
std::string eval_summary_text(const EvalResult& result);

}  // namespace perpo
