#include "perpo/eval/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/core/progress.h"
#include "perpo/core/strings.h"
#include "perpo/reward/aggregate.h"
#include "perpo/reward/reward_config.h"

namespace perpo {

namespace {

/// The second grounding accuracy reported beside acc@<eval.iou_threshold> (RefCOCO's pair).
constexpr double kStrictIouThreshold = 0.75;

/// Per-task aggregation.
struct TaskTally {
  MeanTally reward;
  std::unique_ptr<GroundingMetrics> grounding;
  std::unique_ptr<GroundingMetrics> strict;  // acc@0.75 unless that is the threshold itself
  std::unique_ptr<OcrMetrics> ocr;
};

std::string threshold_name(double threshold) {
  std::ostringstream out;
  out << "acc@" << threshold;  // 0.5 -> "acc@0.5"
  return out.str();
}

/// m[name] = the tally's mean, m[name_se] = its standard error.
void put(nlohmann::json& m, const std::string& name, const MeanTally& tally) {
  m[name] = tally.mean();
  m[name + "_se"] = tally.standard_error();
}

}  // namespace

nlohmann::json Prediction::to_json() const {
  return {{"id", id},         {"task", task}, {"answer", answer}, {"ground_truth", ground_truth},
          {"reward", reward}, {"notes", note}};
}

EvalResult evaluate(VisionLanguageModel& model, RecordPrompts& prompts,
                    const std::vector<DatasetRecord>& records, const Config& config,
                    bool show_progress, const ProcessGroup* group) {
  const ProcessGroup single;
  const ProcessGroup& g = group != nullptr ? *group : single;
  const auto world = static_cast<std::size_t>(g.world());
  const EvalConfig& eval = config.eval;
  PERPO_CHECK_INPUT(eval.batch_size >= 1, "eval.batch_size must be >= 1, got ", eval.batch_size);
  if (!config.reward.name.empty()) find_reward(config.reward.name);  // unknown: input error
  const bool skip_bad = config.data.on_bad_record == "skip";
  const RewardOptions reward_options = reward_options_from(config.reward);
  GenerationOptions options;
  options.max_new_tokens = eval.max_new_tokens;
  options.stop_ids = prompts.tokenizer().stop_ids();
  options.sampler = SamplerOptions::greedy_decoding();
  const auto context = static_cast<int>(model.context_length());

  const std::size_t total =
      eval.limit > 0 ? std::min<std::size_t>(eval.limit, records.size()) : records.size();
  EvalResult result;
  Progress bar(show_progress ? static_cast<std::int64_t>(total) : 0, "evaluating", "records");
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::size_t> predicted, skipped_at;  // record index of each prediction, skip
  for (std::size_t first = 0; first < total; first += eval.batch_size) {
    const std::size_t end = std::min<std::size_t>(first + eval.batch_size, total);
    if ((first / eval.batch_size) % world != static_cast<std::size_t>(g.rank())) {
      bar.advance(static_cast<std::int64_t>(end - first));  // another rank's batch
      continue;
    }
    std::vector<std::size_t> batch_index;
    std::vector<const DatasetRecord*> batch;
    std::vector<const RewardSpec*> rewards;
    std::vector<GenerationPrompt> batch_prompts;
    std::vector<RewardOptions> batch_options;
    for (std::size_t i = first; i < end; ++i) {
      try {
        const RewardSpec& reward =
            reward_for_task(records[i].task, config.reward.name, record_name(records[i]));
        const RewardOptions scoring = prompts.boxes().reward_options(records[i], reward_options);
        check_ground_truth(reward, records[i].ground_truth, scoring, record_name(records[i]));
        GenerationPrompt prompt = prompts.build(records[i]);
        prompt.seeds = {0};
        check_prompt_fits_context(
            prompt, options.max_new_tokens, context,
            "lower eval.max_new_tokens, or skip such records with data.on_bad_record=skip");
        batch.push_back(&records[i]);
        batch_options.push_back(scoring);
        batch_index.push_back(i);
        rewards.push_back(&reward);
        batch_prompts.push_back(std::move(prompt));
      } catch (const Error& e) {
        if (!skip_bad || !e.is_input_error()) throw;
        PERPO_LOG_WARN("skipped ", e.what());
        result.skipped.push_back(e.what());
        skipped_at.push_back(i);
      }
    }
    if (!batch.empty()) {
      auto answers = generate(model, batch_prompts, options, &result.stats);
      for (std::size_t b = 0; b < batch.size(); ++b) {
        const DatasetRecord& record = *batch[b];
        Prediction prediction;
        prediction.id = record.id;
        prediction.task = record.task;
        prediction.answer = prompts.answer_text(answers[b][0].ids);
        prediction.ground_truth = record.ground_truth;
        RewardResult scored =
            rewards[b]->score(prediction.answer, record.ground_truth, batch_options[b]);
        prediction.box_parse = batch_options[b].box_parse;
        prediction.reward = scored.score;
        prediction.note = scored.note;
        result.predictions.push_back(std::move(prediction));
        predicted.push_back(batch_index[b]);
      }
    }
    bar.advance(static_cast<std::int64_t>(end - first));
  }
  bar.finish();
  if (world > 1) {
    // Every rank's predictions, skips and token counts to rank 0, in record order there.
    nlohmann::json mine = {
        {"predictions", nlohmann::json::array()},
        {"skipped", nlohmann::json::array()},
        {"stats", {result.stats.prompt_tokens, result.stats.generated_tokens, result.stats.steps}}};
    for (std::size_t k = 0; k < result.predictions.size(); ++k) {
      const Prediction& p = result.predictions[k];
      mine["predictions"].push_back({predicted[k], p.id, p.task, p.answer, p.ground_truth, p.reward,
                                     p.note, box_units_name(p.box_parse.units),
                                     p.box_parse.image_width, p.box_parse.image_height});
    }
    for (std::size_t k = 0; k < result.skipped.size(); ++k) {
      mine["skipped"].push_back({skipped_at[k], result.skipped[k]});
    }
    const std::vector<std::string> all =
        g.gather_to_writer(mine.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    if (!g.writer()) return result;
    std::vector<std::pair<std::size_t, Prediction>> predictions;
    std::vector<std::pair<std::size_t, std::string>> skipped;
    result.stats = GenerationStats();
    for (const std::string& text : all) {
      const nlohmann::json part = nlohmann::json::parse(text);
      for (const auto& row : part.at("predictions")) {
        Prediction p;
        p.id = row[1].get<std::string>();
        p.task = row[2].get<std::string>();
        p.answer = row[3].get<std::string>();
        p.ground_truth = row[4].get<std::string>();
        p.reward = row[5].get<double>();
        p.note = row[6].get<std::string>();
        p.box_parse.units = parse_box_units(row[7].get<std::string>());
        p.box_parse.image_width = row[8].get<double>();
        p.box_parse.image_height = row[9].get<double>();
        predictions.emplace_back(row[0].get<std::size_t>(), std::move(p));
      }
      for (const auto& row : part.at("skipped")) {
        skipped.emplace_back(row[0].get<std::size_t>(), row[1].get<std::string>());
      }
      result.stats.prompt_tokens += part.at("stats")[0].get<std::int64_t>();
      result.stats.generated_tokens += part.at("stats")[1].get<std::int64_t>();
      result.stats.steps += part.at("stats")[2].get<std::int64_t>();
    }
    std::stable_sort(predictions.begin(), predictions.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::stable_sort(skipped.begin(), skipped.end());
    result.predictions.clear();
    for (auto& [index, p] : predictions) result.predictions.push_back(std::move(p));
    result.skipped.clear();
    for (auto& [index, message] : skipped) result.skipped.push_back(std::move(message));
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  result.metrics = eval_metrics(result.predictions, config);
  result.metrics["records"] = total;
  result.metrics["skipped"] = result.skipped.size();
  return result;
}

nlohmann::json eval_metrics(const std::vector<Prediction>& predictions, const Config& config) {
  const RewardOptions reward_options = reward_options_from(config.reward);
  const TextNormalization normalization{config.reward.normalize_whitespace,
                                        config.reward.lowercase};
  const double threshold = config.eval.iou_threshold;
  std::map<std::string, TaskTally> tasks;
  for (const Prediction& prediction : predictions) {
    TaskTally& tally = tasks[prediction.task];
    tally.reward.add(prediction.reward);
    if (prediction.task == "grounding") {
      if (!tally.grounding) {
        tally.grounding = std::make_unique<GroundingMetrics>(threshold);
        if (threshold != kStrictIouThreshold) {
          tally.strict = std::make_unique<GroundingMetrics>(kStrictIouThreshold);
        }
      }
      RewardOptions options = reward_options;
      options.box_parse = prediction.box_parse;
      const RewardResult iou = reward_iou(prediction.answer, prediction.ground_truth, options);
      tally.grounding->add(iou);
      if (tally.strict) tally.strict->add(iou);
    } else if (prediction.task == "ocr") {
      if (!tally.ocr) tally.ocr = std::make_unique<OcrMetrics>(normalization);
      tally.ocr->add(prediction.answer, prediction.ground_truth);
    }
  }
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [task, tally] : tasks) {
    nlohmann::json m = {{"count", tally.reward.count()}};
    if (tally.grounding) {
      const GroundingMetrics::Tallies& g = tally.grounding->tallies();
      put(m, threshold_name(threshold), g.hits);
      if (tally.strict) put(m, threshold_name(kStrictIouThreshold), tally.strict->tallies().hits);
      put(m, "mean_iou", g.iou);
      put(m, "unparsable", g.unparsable);
    } else if (tally.ocr) {
      const OcrMetrics::Tallies& o = tally.ocr->tallies();
      put(m, "edit_distance", o.edit_distance);
      put(m, "f1", o.f1);
      put(m, "precision", o.precision);
      put(m, "recall", o.recall);
      put(m, "bleu", o.bleu);
      put(m, "exact_match", o.exact_match);
    }
    put(m, "mean_reward", tally.reward);
    metrics[task.empty() ? "untasked" : task] = std::move(m);
  }
  metrics["records"] = predictions.size();
  metrics["evaluated"] = predictions.size();
  metrics["skipped"] = 0;
  return metrics;
}

nlohmann::json flat_metrics(const nlohmann::json& metrics) {
  nlohmann::json flat = nlohmann::json::object();
  for (const auto& [key, value] : metrics.items()) {
    if (value.is_object()) {
      for (const auto& [name, number] : value.items()) flat[key + "/" + name] = number;
    } else {
      flat["eval/" + key] = value;
    }
  }
  return flat;
}

void write_eval_outputs(const EvalResult& result, const std::filesystem::path& dir) {
  std::string lines;
  for (const Prediction& prediction : result.predictions) {
    lines += prediction.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    lines += '\n';
  }
  write_file_atomic(dir / "predictions.jsonl", lines);
  write_file_atomic(dir / "metrics.json", result.metrics.dump(2) + "\n");
}

std::string eval_summary_text(const EvalResult& result) {
  std::ostringstream out;
  const nlohmann::json& m = result.metrics;
  out << "evaluated " << m.value("evaluated", 0) << " of " << m.value("records", 0) << " records ("
      << m.value("skipped", 0) << " skipped)";
  char line[64];
  if (result.seconds > 0) {
    std::snprintf(line, sizeof(line), " in %.1f s", result.seconds);
    out << line;
  }
  out << '\n';
  for (const auto& [task, values] : m.items()) {
    if (!values.is_object()) continue;
    out << "  " << task << ':';
    for (const auto& [name, value] : values.items()) {
      if (ends_with(name, "_se")) continue;  // shown beside its metric
      if (value.is_number_float()) {
        std::snprintf(line, sizeof(line), " %s %.4f", name.c_str(), value.get<double>());
        out << line;
        if (values.contains(name + "_se")) {
          std::snprintf(line, sizeof(line), " (se %.4f)", values[name + "_se"].get<double>());
          out << line;
        }
      } else {
        out << ' ' << name << ' ' << value.dump();
      }
    }
    out << '\n';
  }
  return out.str();
}

}  // namespace perpo
