// The demo's sampling and greedy evaluation (pipeline_decode.h).
#include "perpo/demo/pipeline_decode.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "perpo/core/error.h"
#include "perpo/core/progress.h"
#include "perpo/generate/generator.h"
#include "perpo/generate/record_prompts.h"
#include "perpo/generate/sample_lists.h"
#include "perpo/generate/sampler.h"
#include "perpo/reward/reward.h"
#include "perpo/reward/text.h"
#include "perpo/reward/text_metrics.h"

namespace perpo {
namespace {

// Mean and one standard error (sample std / sqrt(n)) of `values`.
std::pair<double, double> mean_and_se(const std::vector<double>& values) {
  const double n = static_cast<double>(values.size());
  if (values.empty()) return {0.0, 0.0};
  double sum = 0;
  for (double v : values) sum += v;
  const double mean = sum / n;
  if (values.size() < 2) return {mean, 0.0};
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  return {mean, std::sqrt(squares / (n - 1) / n)};
}

void put(TaskMetrics& metrics, const std::string& name, const std::vector<double>& values) {
  const auto [mean, se] = mean_and_se(values);
  metrics.values[name] = mean;
  metrics.values[name + "_se"] = se;
}

std::string trimmed(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\n");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t\n");
  return text.substr(first, last - first + 1);
}

}  // namespace

TaskMetrics score_predictions(const std::vector<DatasetRecord>& records,
                              const std::vector<std::string>& predictions) {
  PERPO_CHECK(records.size() == predictions.size(), "score_predictions: ", records.size(),
              " records but ", predictions.size(), " predictions");
  TaskMetrics metrics;
  metrics.predictions = predictions;
  metrics.values["n"] = static_cast<double>(records.size());
  if (records.empty()) return metrics;
  const std::string task = records.front().task;
  const RewardSpec& reward = find_reward(default_reward_for_task(task));
  std::vector<double> hit50, hit75, iou, unparsable, distance, f1, exact;
  for (std::size_t i = 0; i < records.size(); ++i) {
    PERPO_CHECK_INPUT(records[i].task == task, records[i].source.to_string(), ": task '",
                      records[i].task, "' in a '", task, "' evaluation set");
    const RewardResult r = reward.score(predictions[i], records[i].ground_truth, {});
    metrics.scores.push_back(r.score);
    if (task == "grounding") {
      iou.push_back(r.score);
      hit50.push_back(r.score >= 0.5 ? 1.0 : 0.0);
      hit75.push_back(r.score >= 0.75 ? 1.0 : 0.0);
      unparsable.push_back(r.note == "ok" ? 0.0 : 1.0);
    } else {
      const std::u32string predicted = decode_utf8(predictions[i]);
      const std::u32string truth = decode_utf8(records[i].ground_truth);
      distance.push_back(normalized_edit_distance(predicted, truth));
      f1.push_back(word_overlap(split_words(predicted), split_words(truth)).f1);
      exact.push_back(predicted == truth ? 1.0 : 0.0);
    }
  }
  if (task == "grounding") {
    put(metrics, "acc@0.5", hit50);
    put(metrics, "acc@0.75", hit75);
    put(metrics, "mean_iou", iou);
    put(metrics, "unparsable", unparsable);
  } else {
    put(metrics, "edit_distance", distance);
    put(metrics, "f1", f1);
    put(metrics, "exact_match", exact);
  }
  return metrics;
}

DemoDecoder::DemoDecoder(LlavaModelImpl& model, const Tokenizer& tokenizer,
                         const ModelConfig& model_config, const Config& config)
    : model_(model),
      tokenizer_(tokenizer),
      config_(config),
      chat_(tokenizer, config.tokenizer),
      encoder_(chat_, config.data, model_config.image_tokens()) {}

std::vector<std::vector<std::string>> DemoDecoder::decode(const std::vector<DatasetRecord>& records,
                                                          int answers, bool greedy,
                                                          std::uint64_t seed, int batch) {
  GenerationOptions options;
  options.max_new_tokens = greedy ? config_.eval.max_new_tokens : config_.sampling.max_new_tokens;
  options.stop_ids = {tokenizer_.eos_id()};
  options.pad_id = std::max(tokenizer_.pad_id(), 0);
  options.sampler =
      greedy ? SamplerOptions::greedy_decoding() : SamplerOptions::from(config_.sampling);
  std::vector<std::vector<std::string>> texts;
  texts.reserve(records.size());
  for (std::size_t start = 0; start < records.size(); start += static_cast<std::size_t>(batch)) {
    const std::size_t end = std::min(records.size(), start + static_cast<std::size_t>(batch));
    std::vector<GenerationPrompt> prompts;
    for (std::size_t i = start; i < end; ++i) {
      const DatasetRecord& record = records[i];
      GenerationPrompt prompt;
      prompt.prompt_ids = encoder_.encode_sft(record).prompt_ids;
      const PixelValues pixels = load_pixels(record, config_.image);
      prompt.pixel_values = torch::from_blob(const_cast<float*>(pixels.data.data()),
                                             {pixels.channels, pixels.height, pixels.width},
                                             torch::kFloat32)
                                .clone();  // (3, H, W)
      const std::uint64_t base = record_seed(seed, record.id);
      for (int n = 0; n < answers; ++n) prompt.seeds.push_back(answer_seed(base, n));
      prompt.name = record.source.to_string() + " (id " + record.id + ")";
      prompts.push_back(std::move(prompt));
    }
    const auto generated = generate(model_, prompts, options);
    for (const auto& row : generated) {
      std::vector<std::string> row_texts;
      for (const GeneratedAnswer& answer : row) {
        row_texts.push_back(trimmed(tokenizer_.decode(answer.ids)));
      }
      texts.push_back(std::move(row_texts));
    }
  }
  return texts;
}

std::vector<PreferenceList> DemoDecoder::sample_lists(const std::vector<DatasetRecord>& records,
                                                      int answers, bool add_ground_truth,
                                                      std::uint64_t seed, bool reference_logps,
                                                      int batch) {
  Config config = config_;
  config.sampling.num_answers = answers;
  config.sampling.add_ground_truth = add_ground_truth;
  config.sampling.reference_logps = reference_logps;
  config.run.seed = seed;
  RecordPrompts prompts(model_.config(), tokenizer_, config);
  ListSampler sampler(model_, prompts, config);
  std::vector<PreferenceList> lists;
  lists.reserve(records.size());
  for (std::size_t start = 0; start < records.size(); start += static_cast<std::size_t>(batch)) {
    const std::size_t end = std::min(records.size(), start + static_cast<std::size_t>(batch));
    SampledBatch sampled =
        sampler.sample(std::vector<DatasetRecord>(records.begin() + start, records.begin() + end));
    for (auto& list : sampled.lists) lists.push_back(std::move(list));
  }
  return lists;
}

TaskMetrics DemoDecoder::evaluate(const std::vector<DatasetRecord>& records, int batch) {
  const auto texts = decode(records, 1, /*greedy=*/true, 0, batch);
  std::vector<std::string> predictions;
  predictions.reserve(texts.size());
  for (const auto& row : texts) predictions.push_back(row.front());
  return score_predictions(records, predictions);
}

}  // namespace perpo
