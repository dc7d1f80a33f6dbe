// The model stages of `perpo demo` (pipeline_stages.h): stage-1 SFT, sampling the lists, the
// three stage-2 arms, evaluation. Training is perpo train's (run_training), in <stage>/run.
#include "perpo/demo/pipeline_stages.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "perpo/config/config_io.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/signals.h"
#include "perpo/demo/pipeline_decode.h"
#include "perpo/model/convert.h"
#include "perpo/model/load.h"
#include "perpo/model/run_checkpoint.h"
#include "perpo/train/trainer.h"

namespace perpo {
namespace fs = std::filesystem;
namespace {

fs::path tokenizer_file(const DemoContext& c) { return c.options.out / "data" / "tokenizer.model"; }
fs::path sft_model_dir(const DemoContext& c) { return c.options.out / "sft" / "model"; }
fs::path lists_file(const DemoContext& c) { return c.options.out / "lists" / "lists.jsonl"; }
fs::path arm_dir(const DemoContext& c, const std::string& arm) {
  return c.options.out / "arms" / arm;
}

// Trains `config` in <stage_dir>/run (resuming an unfinished run of the same config, starting
// over otherwise) and exports the last checkpoint to <stage_dir>/model.
TrainSummary train_and_export(const Config& config, const fs::path& stage_dir,
                              const TrainerHooks& hooks) {
  const fs::path run_dir = config.run.dir;
  bool resume = false;
  if (fs::exists(run_dir)) {
    const bool same = fs::exists(run_dir / "config.yaml") &&
                      read_file(run_dir / "config.yaml") == dump_config(config);
    resume = same && latest_run_checkpoint(run_dir / "checkpoints").has_value();
    if (!resume) fs::remove_all(run_dir);  // our own unfinished stage with other settings
  }
  TrainSummary summary =
      run_training(config, {.resume = resume, .force = false, .config_file = {}}, hooks);
  PERPO_CHECK(!summary.stopped, "stopped by a signal at step ", summary.steps, " of ",
              summary.total_steps, "; run the demo again to continue");
  const fs::path model_dir = stage_dir / "model";
  fs::remove_all(model_dir);
  export_training_checkpoint(summary.last_checkpoint, model_dir);
  return summary;
}

// The evaluation settings of the demo's tables (DemoDecoder::evaluate): every record of the
// split, greedy, each task's default reward, Acc@0.5.
Config eval_config(Config config, const fs::path& records) {
  config.data.eval = records.string();
  config.eval.batch_size = 32;
  config.eval.limit = 0;
  config.eval.iou_threshold = 0.5;
  config.reward.name.clear();
  return config;
}

Config model_config_for(const DemoContext& c, const fs::path& model_dir) {
  Config config = c.base;
  config.model.path = model_dir.string();
  config.tokenizer.path = tokenizer_file(c).string();
  return config;
}

// The first `per_task` records of each task of the validation split (curves during training).
std::vector<std::vector<DatasetRecord>> curve_sets(const DemoContext& c) {
  std::vector<std::vector<DatasetRecord>> sets;
  for (const auto& task : c.options.plan().tasks) {
    auto records = read_records(split_records(c.options.out, task, "val"));
    records.resize(std::min<std::size_t>(records.size(), c.options.plan().curve_records));
    sets.push_back(std::move(records));
  }
  return sets;
}

}  // namespace

fs::path eval_config_file(const fs::path& out, const std::string& model, const std::string& task) {
  return out / "eval" / model / (task + ".eval.yaml");
}

double run_sft_stage(DemoContext& c) {
  // Stage 1: the tiny model trained from scratch on the ground truths of the sft split, by perpo
  // train's sft mode (padded batches of train.lists_per_step records).
  const auto start = std::chrono::steady_clock::now();
  const DemoPlan& plan = c.options.plan();
  const fs::path dir = c.options.out / "sft";
  Config config = c.base;
  config.tokenizer.path = tokenizer_file(c).string();
  config.data.train = mixed_records(c.options.out, "sft").string();
  config.loss.name = "sft";
  config.train.max_steps = plan.sft_steps;
  config.train.lists_per_step = plan.sft_batch;
  config.train.log_every = 25;
  config.train.checkpoint_every = 0;
  config.train.keep_checkpoints = 1;
  config.optim.lr = plan.sft_lr;
  config.optim.warmup_steps = std::min(100, plan.sft_steps / 10);
  // Stage 1 does not sample: its stamp must not change with the arms' sampling temperature.
  config.sampling.temperature = 1.0;
  config.run.dir = (dir / "run").string();
  StageMark mark(dir, {{"config", dump_config(config)}});
  if (const double s = finished_stage(c, mark, "sft", "reused " + (dir / "model").string()); s >= 0)
    return s;
  fs::create_directories(dir);
  stage_line("sft", "stage 1 from scratch: " + std::to_string(plan.sft_steps) + " steps x " +
                        std::to_string(plan.sft_batch) + " records");
  TrainerHooks hooks;
  hooks.stop_requested = [] { return stop_requested(); };
  train_and_export(config, dir, hooks);
  const double seconds = seconds_since(start);
  mark.finish(seconds);
  stage_line("sft", "done in " + std::to_string(static_cast<int>(seconds)) + " s");
  return seconds;
}

double run_sample_stage(DemoContext& c) {
  const auto start = std::chrono::steady_clock::now();
  const DemoPlan& plan = c.options.plan();
  const fs::path dir = lists_file(c).parent_path();
  // An offline grpo arm reads the sampling model's token log-probs from the lists (online, grpo
  // samples its own lists from step 0).
  const bool token_logps = plan.resample_every == 0 &&
                           std::find(plan.arms.begin(), plan.arms.end(), "grpo") != plan.arms.end();
  nlohmann::json settings = {
      {"answers", plan.answers},
      {"ground_truth_in_list", plan.ground_truth_in_list},
      {"temperature", plan.temperature},
      {"sft", nlohmann::json::parse(read_file(c.options.out / "sft" / "done.json"))["settings"]},
      {"pref_records", plan.pref_records}};
  if (token_logps) settings["token_logps"] = true;
  StageMark mark(dir, settings);
  if (const double s = finished_stage(c, mark, "sample", "reused " + lists_file(c).string());
      s >= 0)
    return s;
  fs::create_directories(dir);
  Config config = model_config_for(c, sft_model_dir(c));
  config.sampling.token_logps = token_logps;
  LoadedModel loaded = load_model(config);
  DemoDecoder decoder(*loaded.model, *loaded.tokenizer, config);
  std::string text;
  nlohmann::json stats = nlohmann::json::object();
  for (const auto& task : plan.tasks) {
    const auto records = read_records(split_records(c.options.out, task, "pref"));
    const auto lists = decoder.sample_lists(records, plan.answers, plan.ground_truth_in_list,
                                            c.options.seed, /*reference_logps=*/true);
    double reward_sum = 0;
    std::size_t rewards = 0, all_equal = 0;
    std::vector<double> sampled;  // rewards of sampled answers (ground truth left out)
    for (PreferenceList list : lists) {
      const std::size_t n_sampled = static_cast<std::size_t>(plan.answers);
      for (std::size_t i = 0; i < n_sampled; ++i) sampled.push_back(list.rewards[i]);
      reward_sum += std::accumulate(list.rewards.begin(), list.rewards.begin() + n_sampled, 0.0);
      rewards += n_sampled;
      const auto [lo, hi] = std::minmax_element(list.rewards.begin(), list.rewards.end());
      if (*lo == *hi) ++all_equal;
      list.record.image = (fs::path("..") / "data" / (task + "-pref") / list.record.image).string();
      text += to_json(list).dump() + "\n";
    }
    stats[task] = {{"lists", lists.size()},
                   {"mean_reward", rewards ? reward_sum / static_cast<double>(rewards) : 0.0},
                   {"all_equal_lists", all_equal},
                   {"sampled_rewards", sampled}};
    stage_line("sample", task + ": " + std::to_string(lists.size()) + " lists of " +
                             std::to_string(plan.answers) + " answers, mean reward " +
                             std::to_string(stats[task]["mean_reward"].get<double>()) + ", " +
                             std::to_string(all_equal) + " lists all equal");
  }
  write_file_atomic(lists_file(c), text);
  const double seconds = seconds_since(start);
  mark.finish(seconds, {{"tasks", stats}});
  return seconds;
}

double run_arm_stage(DemoContext& c, const std::string& arm) {
  const auto start = std::chrono::steady_clock::now();
  const DemoPlan& plan = c.options.plan();
  const fs::path dir = arm_dir(c, arm);
  Config config = model_config_for(c, sft_model_dir(c));
  config.loss.name = arm;
  config.loss.beta = plan.beta;
  config.loss.gamma = plan.gamma;
  const bool online = arm != "sft" && plan.resample_every > 0;
  config.data.train =
      arm == "sft" ? mixed_records(c.options.out, "pref").string() : lists_file(c).string();
  if (online) {
    // perpo train's own online sampler (train/online.h), with the stage-1 sampling settings.
    config.train.online_resample_every = plan.resample_every;
    config.sampling.num_answers = plan.answers;
    config.sampling.add_ground_truth = plan.ground_truth_in_list;
    config.sampling.lists_per_batch = 16;
    // Re-sampled lists are scored by the frozen stage-1 model, or by the policy that sampled them.
    config.loss.reference = plan.reference == "sampler" ? "sampler" : "live";
  }
  config.train.max_steps = plan.pref_steps;
  config.train.lists_per_step = plan.lists_per_step;
  config.train.log_every = 1;
  config.train.checkpoint_every = 0;
  config.train.keep_checkpoints = 1;
  config.optim.lr = arm == "sft"    ? plan.arm_lr.sft
                    : arm == "dpo"  ? plan.arm_lr.dpo
                    : arm == "grpo" ? plan.arm_lr.grpo
                                    : plan.arm_lr.perpo;
  config.optim.warmup_steps = static_cast<int>(plan.pref_steps * plan.warmup_share);
  config.train.eval_every =
      plan.curve_points > 0 ? std::max(1, plan.pref_steps / plan.curve_points) : 0;
  config.run.dir = (dir / "run").string();
  StageMark mark(dir, {{"config", dump_config(config)},
                       {"lists", nlohmann::json::parse(read_file(lists_file(c).parent_path() /
                                                                 "done.json"))["settings"]}});
  if (const double s = finished_stage(c, mark, "arm", arm + ": reused " + (dir / "model").string());
      s >= 0) {
    return s;
  }
  stage_line("arm", arm + ": " + std::to_string(plan.pref_steps) + " steps x " +
                        std::to_string(plan.lists_per_step) + " lists, lr " +
                        std::to_string(config.optim.lr) + (online ? ", online" : ""));

  const auto curves = curve_sets(c);
  TrainerHooks hooks;
  hooks.stop_requested = [] { return stop_requested(); };
  hooks.evaluate_at_start = true;  // the curves start at step 0, the stage-1 model
  hooks.evaluate = [&](LoadedModel& policy, std::int64_t) {
    DemoDecoder decoder(*policy.model, *policy.tokenizer, config);
    std::map<std::string, double> values;
    for (const auto& records : curves) {
      const TaskMetrics m = decoder.evaluate(records);
      const std::string task = records.front().task;
      for (const std::string name : {"acc@0.5", "mean_iou", "edit_distance", "f1"}) {
        if (m.values.count(name)) values[task + "/" + name] = m.values.at(name);
        if (m.values.count(name + "_se"))
          values[task + "/" + name + "_se"] = m.values.at(name + "_se");
      }
    }
    return values;
  };
  const TrainSummary summary = train_and_export(config, dir, hooks);
  const double seconds = seconds_since(start);
  mark.finish(seconds, {{"last_loss", summary.last_loss}, {"steps", summary.steps}});
  stage_line("arm", arm + ": done in " + std::to_string(static_cast<int>(seconds)) + " s");
  return seconds;
}

double run_eval_stage(DemoContext& c, DemoTable& results) {
  const auto start = std::chrono::steady_clock::now();
  const DemoPlan& plan = c.options.plan();
  const fs::path dir = c.options.out / "eval";
  fs::create_directories(dir);
  std::vector<std::pair<std::string, fs::path>> models = {{"start", sft_model_dir(c)}};
  for (const auto& arm : plan.arms) models.emplace_back(arm, arm_dir(c, arm) / "model");
  double reused_seconds = 0;
  for (const auto& [name, model_dir] : models) {
    const fs::path stage_done =
        name == "start" ? c.options.out / "sft" / "done.json" : arm_dir(c, name) / "done.json";
    StageMark mark(dir / name, {{"model", nlohmann::json::parse(read_file(stage_done))["settings"]},
                                {"split", plan.eval_split},
                                {"tasks", plan.tasks}});
    if (mark.done()) {
      const auto saved = mark.saved();
      reused_seconds += saved.value("seconds", 0.0);
      for (const auto& [task, metrics] : saved["metrics"].items()) {
        for (const auto& [metric, value] : metrics.items()) results[name][task][metric] = value;
      }
      continue;
    }
    PERPO_CHECK(!c.collect, "the evaluation of ", name, " on ", plan.eval_split,
                " did not finish (", (dir / name).string(), ")");
    const auto model_start = std::chrono::steady_clock::now();
    fs::create_directories(dir / name);
    const Config config = model_config_for(c, model_dir);
    for (const auto& task : plan.tasks) {  // what `perpo eval --config` reproduces it with
      write_file_atomic(
          eval_config_file(c.options.out, name, task),
          dump_config(eval_config(config, split_records(c.options.out, task, plan.eval_split))));
    }
    LoadedModel loaded = load_model(config);
    DemoDecoder decoder(*loaded.model, *loaded.tokenizer, config);
    nlohmann::json metrics_json = nlohmann::json::object();
    std::string predictions;
    for (const auto& task : plan.tasks) {
      const auto records = read_records(split_records(c.options.out, task, plan.eval_split));
      const TaskMetrics m = decoder.evaluate(records);
      for (const auto& [metric, value] : m.values) results[name][task][metric] = value;
      metrics_json[task] = m.values;
      for (std::size_t i = 0; i < records.size(); ++i) {
        predictions += nlohmann::json{{"id", records[i].id},
                                      {"task", task},
                                      {"ground_truth", records[i].ground_truth},
                                      {"prediction", m.predictions[i]},
                                      {"score", m.scores[i]}}
                           .dump() +
                       "\n";
      }
    }
    write_file_atomic(dir / name / "predictions.jsonl", predictions);
    write_file_atomic(dir / name / "metrics.json", metrics_json.dump(2) + "\n");
    mark.finish(seconds_since(model_start), {{"metrics", metrics_json}});
    stage_line("eval", name + " evaluated on " + plan.eval_split);
  }
  return seconds_since(start) + reused_seconds;
}

}  // namespace perpo
