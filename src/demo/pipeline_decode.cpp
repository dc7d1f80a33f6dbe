// The demo's sampling and greedy evaluation (pipeline_decode.h).
#include "perpo/demo/pipeline_decode.h"

#include <algorithm>

#include "perpo/core/error.h"
#include "perpo/eval/evaluate.h"
#include "perpo/generate/record_prompts.h"
#include "perpo/generate/sample_lists.h"

namespace perpo {
namespace {

/// The metrics the demo reports for each task; each comes with its "<name>_se".
std::vector<std::string> demo_metric_names(const std::string& task) {
  if (task == "grounding") return {"acc@0.5", "acc@0.75", "mean_iou", "unparsable"};
  return {"edit_distance", "f1", "exact_match"};
}

}  // namespace

DemoDecoder::DemoDecoder(VisionLanguageModel& model, const TextTokenizer& tokenizer,
                         const Config& config)
    : model_(model), tokenizer_(tokenizer), config_(config) {}

std::vector<PreferenceList> DemoDecoder::sample_lists(const std::vector<DatasetRecord>& records,
                                                      int answers, bool add_ground_truth,
                                                      std::uint64_t seed, bool reference_logps,
                                                      int batch) {
  Config config = config_;
  config.sampling.num_answers = answers;
  config.sampling.add_ground_truth = add_ground_truth;
  config.sampling.reference_logps = reference_logps;
  config.run.seed = seed;
  config.sampling.lists_per_batch = batch;
  RecordPrompts prompts(model_, tokenizer_, config);
  ListSampler sampler(model_, prompts, config);
  return sampler.sample_in_batches(records).lists;
}

TaskMetrics DemoDecoder::evaluate(const std::vector<DatasetRecord>& records, int batch) {
  TaskMetrics metrics;
  metrics.values["n"] = static_cast<double>(records.size());
  if (records.empty()) return metrics;
  const std::string task = records.front().task;
  for (const DatasetRecord& record : records) {
    PERPO_CHECK_INPUT(record.task == task, record_name(record), ": task '", record.task, "' in a '",
                      task, "' evaluation set");
  }
  Config config = config_;
  config.eval.batch_size = batch;
  config.eval.limit = 0;
  config.eval.iou_threshold = 0.5;
  config.reward.name.clear();  // each task's default reward
  RecordPrompts prompts(model_, tokenizer_, config);
  EvalResult result = perpo::evaluate(model_, prompts, records, config);
  const nlohmann::json& values = result.metrics.at(task);
  for (const std::string& name : demo_metric_names(task)) {
    metrics.values[name] = values.at(name).get<double>();
    metrics.values[name + "_se"] = values.at(name + "_se").get<double>();
  }
  for (Prediction& prediction : result.predictions) {
    metrics.predictions.push_back(std::move(prediction.answer));
    metrics.scores.push_back(prediction.reward);
  }
  return metrics;
}

}  // namespace perpo
