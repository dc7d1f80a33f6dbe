// The trainer's online mode and evaluation seam: an interrupted online run resumes bit for bit,
// the frozen start's log-probs come from the policy with its LoRA adapters off (equal to the live
// reference model's), and an evaluation hook leaves the training losses untouched.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "perpo/config/config_io.h"
#include "perpo/core/atomic_file.h"
#include "perpo/generate/record_prompts.h"
#include "perpo/generate/sample_lists.h"
#include "perpo/model/load.h"
#include "perpo/runtime/runtime.h"
#include "perpo/train/online.h"
#include "perpo/train/reference.h"
#include "perpo/train/train_data.h"
#include "perpo/train/trainer.h"
#include "test_util.h"
#include "train_fixture.h"
#include "train_runs.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;

using test::tiny_config;

// LoRA alone trains (vision tower and projector frozen); dropout draws from the training RNG.
const std::vector<std::string> kLoraOnly = {
    "model.lora.enabled=true",  "model.lora.r=4",
    "model.lora.alpha=8",       "model.lora.dropout=0.2",
    "model.freeze_vision=true", "model.freeze_projector=true",
    "train.lists_per_step=1",   "optim.lr=0.05"};

std::vector<StepMetrics> run_and_record(const Config& config, TrainerHooks hooks = {},
                                        bool resume = false, std::int64_t stop_after = 0) {
  std::vector<StepMetrics> steps;
  bool stop = false;
  hooks.on_step = [&](const StepMetrics& m) {
    steps.push_back(m);
    stop = m.step == stop_after;
  };
  if (stop_after > 0) hooks.stop_requested = [&] { return stop; };
  run_training(config, {.resume = resume, .force = false, .config_file = {}}, hooks);
  return steps;
}

// A list as a caller's sampler returns it: three scored answers, no ref_logps.
PreferenceList sampled_list() {
  PreferenceList list;
  list.record.id = "fixed";
  list.record.image = test::train_fixture_image().string();
  list.record.image_path = test::train_fixture_image();
  list.record.prompt = "Box?";
  list.answers = {"[0.1, 0.2, 0.3, 0.4]", "[0.5, 0.6, 0.7, 0.8]", "no box"};
  list.rewards = {1.0, 0.5, 0.0};
  return list;
}

using test::metrics_lines;

// Runs 6 online steps straight, and stopped after step 3 then resumed: same losses and weights.
void expect_online_resume_bit_for_bit(const std::string& name, std::vector<std::string> extra) {
  fs::path dir = test::fresh_scratch_dir("train", name);
  fs::path lists = test::write_train_lists(dir, 3, 3, /*with_ref=*/true);
  // Re-sample every 2 steps from the policy; ocr_edit scores the random model's answers against
  // the ground truth with distinct values, so the re-sampled lists carry a training signal.
  extra.insert(extra.end(), {"train.online_resample_every=2", "train.max_steps=6",
                             "train.grad_accum=2", "data.shuffle=true", "reward.name=ocr_edit",
                             "sampling.num_answers=3", "sampling.max_new_tokens=6"});
  std::vector<StepMetrics> full = run_and_record(tiny_config(lists, dir / "full", extra));
  ASSERT_EQ(full.size(), 6u);
  int with_signal = 0;
  for (int i = 2; i < 6; ++i) with_signal += full[i].lists_without_signal < full[i].lists;
  EXPECT_GE(with_signal, 2) << "the re-sampled lists should carry rewards that differ";

  // Stopped after step 3: inside the lists sampled at step 2, one step before the next re-sample.
  Config part = tiny_config(lists, dir / "part", extra);
  std::vector<StepMetrics> first = run_and_record(part, {}, false, /*stop_after=*/3);
  ASSERT_EQ(first.size(), 3u);
  const auto state = nlohmann::json::parse(
      read_file(dir / "part" / "checkpoints" / "step-3" / "trainer_state.json"));
  ASSERT_TRUE(state.contains("online"));
  EXPECT_EQ(state["online"]["sampled_at"], 2);
  // lists_per_step 1 x grad_accum 2 x K 2 = 4 wanted, at most the 3 records (none twice).
  EXPECT_EQ(state["online"]["lists"].size(), 3u);
  std::vector<StepMetrics> second = run_and_record(part, {}, /*resume=*/true);
  ASSERT_EQ(second.size(), 3u);
  for (int i = 0; i < 6; ++i) {
    const StepMetrics& resumed = i < 3 ? first[i] : second[i - 3];
    EXPECT_EQ(resumed.step, full[i].step);
    EXPECT_EQ(resumed.loss, full[i].loss) << "step " << i + 1;  // bit for bit
    EXPECT_EQ(resumed.grad_norm, full[i].grad_norm) << "step " << i + 1;
    EXPECT_EQ(resumed.lists_without_signal, full[i].lists_without_signal) << "step " << i + 1;
  }
  test::expect_same_weights(dir / "full" / "checkpoints" / "step-6",
                            dir / "part" / "checkpoints" / "step-6");
}

TEST(TrainerOnline, InterruptedOnlineRunResumesBitForBit) {
  expect_online_resume_bit_for_bit("online_resume", kLoraOnly);
}

TEST(TrainerOnline, InterruptedOnlineRunWithLiveReferenceResumesBitForBit) {
  // Every weight trains; the frozen start is a second model (loss.reference=live) whose
  // log-probs of the re-sampled answers are kept with the lists and checkpointed.
  expect_online_resume_bit_for_bit(
      "online_resume_live", {"loss.reference=live", "train.lists_per_step=1", "optim.lr=0.05"});
}

// Online training samples with `perpo sample`'s ListSampler: the same lists (ground truth added,
// rewards, ref_logps for loss.reference=sampler) as it gives with run.seed + step, for the
// records the chooser picks: the next ones in data order, cycling, none twice in a call.
TEST(TrainerOnline, OnlineSamplerIsPerpoSampleWithTheStepsSeed) {
  fs::path dir = test::fresh_scratch_dir("train", "online_sampler_is_sample");
  fs::path lists = test::write_train_lists(dir, 3, 3, /*with_ref=*/true);
  const Config config = tiny_config(
      lists, dir / "run",
      {"sampling.num_answers=3", "sampling.max_new_tokens=6", "sampling.add_ground_truth=true",
       "reward.name=ocr_edit", "train.online_resample_every=2", "run.seed=5",
       "loss.reference=sampler", "sampling.lists_per_batch=1"});
  LoadedModel policy = load_model(config);
  const TrainData data = load_train_data(config, policy);
  std::vector<DatasetRecord> records;
  for (const TrainExample& example : data.examples) records.push_back(example.record);
  ASSERT_EQ(records.size(), 3u);

  OnlineSampler online(config, records, 2);
  auto ids = [&](std::int64_t step) {
    std::vector<std::string> out;
    for (const DatasetRecord& record : online.records_for(step)) out.push_back(record.id);
    return out;
  };
  EXPECT_EQ(ids(2), (std::vector<std::string>{records[0].id, records[1].id}));
  EXPECT_EQ(ids(4), (std::vector<std::string>{records[2].id, records[0].id}));
  EXPECT_EQ(ids(6), (std::vector<std::string>{records[1].id, records[2].id}));
  EXPECT_EQ(OnlineSampler(config, records, 7).records_for(2).size(), 3u);  // each once

  const std::vector<PreferenceList> got = online(policy, 4);
  Config at_step = config;
  at_step.run.seed = 5 + 4;
  RecordPrompts prompts(*policy.model, *policy.tokenizer, at_step);
  ListSampler sampler(*policy.model, prompts, at_step);
  const SampledBatch want = sampler.sample({records[2], records[0]});
  ASSERT_EQ(got.size(), 2u);
  ASSERT_EQ(want.lists.size(), 2u);
  double reward_sum = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(got[i].record.id, want.lists[i].record.id);
    EXPECT_EQ(got[i].answers, want.lists[i].answers);
    EXPECT_EQ(got[i].rewards, want.lists[i].rewards);
    ASSERT_EQ(got[i].answers.size(), 4u);  // 3 sampled + the ground truth
    EXPECT_EQ(got[i].answers.back(), got[i].record.ground_truth);
    EXPECT_EQ(got[i].rewards.back(), 1.0);
    ASSERT_EQ(got[i].ref_logps.size(), 4u);  // the sampling policy's own (loss.reference=sampler)
    for (std::size_t a = 0; a < 4; ++a) {
      EXPECT_NEAR(got[i].ref_logps[a], want.lists[i].ref_logps[a], 1e-5);
    }
    for (std::size_t a = 0; a < 3; ++a) reward_sum += got[i].rewards[a];
  }
  // The metrics leave the added ground truth out.
  EXPECT_DOUBLE_EQ(online.last_metrics().at("online/grounding/mean_reward"), reward_sum / 6);
  EXPECT_EQ(online.last_metrics().at("online/lists"), 2.0);

  // Another step draws other answers (its own seed).
  EXPECT_NE(online(policy, 10)[0].answers, got[0].answers);
}

TEST(TrainerOnline, FrozenStartLogpsComeFromThePolicyWithAdaptersOff) {
  fs::path dir = test::fresh_scratch_dir("train", "online_adapters_off");
  // Without ref_logps in the lists the pre-pass scores them with the initial weights, as the live
  // reference does every step: the two runs differ only in how re-sampled lists are scored.
  fs::path lists = test::write_train_lists(dir, 2, 3, /*with_ref=*/false);
  std::vector<std::string> extra = kLoraOnly;
  extra.insert(extra.end(), {"train.online_resample_every=2", "train.max_steps=4"});
  const PreferenceList fixed = sampled_list();  // what the caller's sampler returns
  TrainerHooks hooks;
  hooks.resample = [&](LoadedModel&, std::int64_t) { return std::vector<PreferenceList>{fixed}; };

  // Adapters off (no second model) and the live reference model give the same losses.
  std::vector<StepMetrics> off = run_and_record(tiny_config(lists, dir / "off", extra), hooks);
  extra.push_back("loss.reference=live");
  std::vector<StepMetrics> live = run_and_record(tiny_config(lists, dir / "live", extra), hooks);
  ASSERT_EQ(off.size(), 4u);
  ASSERT_EQ(live.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(off[i].loss, live[i].loss, 1e-6) << "step " << i + 1;
  // ref_logps that a sampler returns are replaced by the live reference's (as when it ran every
  // step); a step reads them from the lists rather than running the reference again.
  PreferenceList bogus = fixed;
  bogus.ref_logps = {5.0, -5.0, 40.0};
  hooks.resample = [&](LoadedModel&, std::int64_t) { return std::vector<PreferenceList>{bogus}; };
  std::vector<StepMetrics> replaced =
      run_and_record(tiny_config(lists, dir / "replaced", extra), hooks);
  ASSERT_EQ(replaced.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(replaced[i].loss, live[i].loss) << "step " << i + 1;

  // The checkpointed lists hold the initial model's log-probs of the answers...
  const auto state = nlohmann::json::parse(
      read_file(dir / "off" / "checkpoints" / "step-4" / "trainer_state.json"));
  auto saved = online_lists_from_json(state["online"]["lists"]);
  ASSERT_EQ(saved.size(), 1u);
  Config config = tiny_config(lists, dir / "unused", kLoraOnly);
  LoadedModel initial = load_model(config);
  TrainData data = encode_lists({fixed}, config, initial);
  const std::vector<double> expected = reference_logps(*initial.model, data.examples[0], config);
  ASSERT_EQ(saved[0].ref_logps.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_NEAR(saved[0].ref_logps[i], expected[i], 1e-5);
  // ... which the trained policy (adapters on) no longer gives.
  auto weights = load_run_checkpoint(dir / "off" / "checkpoints" / "step-4").weights;
  {
    torch::NoGradGuard no_grad;
    std::map<std::string, at::Tensor> named(weights.begin(), weights.end());
    for (auto& item : initial.model->named_parameters()) {
      if (named.count(item.key())) item.value().copy_(named.at(item.key()));
    }
  }
  ASSERT_TRUE(adapters_are_all_that_trains(*initial.model));
  const std::vector<double> trained = reference_logps(*initial.model, data.examples[0], config);
  const std::vector<double> off_again =
      frozen_start_logps(*initial.model, data.examples[0], config);
  EXPECT_GT(std::abs(trained[0] - expected[0]), 1e-3);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_NEAR(off_again[i], expected[i], 1e-5);
  // Adapters are on again after the call.
  EXPECT_EQ(reference_logps(*initial.model, data.examples[0], config), trained);

  // Without LoRA (or with other parts trained) there is no frozen start to switch to.
  std::vector<std::string> full_ft = {"train.online_resample_every=2", "train.max_steps=4",
                                      "model.freeze_vision=true", "model.freeze_projector=true"};
  std::string message = test::error_of(
      [&] { run_training(tiny_config(lists, dir / "refused", full_ft), {}, hooks); });
  EXPECT_NE(message.find("loss.reference"), std::string::npos) << message;
  EXPECT_NE(message.find("model.lora.enabled"), std::string::npos) << message;
}

TEST(TrainerOnline, SamplerReferenceScoresEachResampledListWithThePolicyThatSampledIt) {
  fs::path dir = test::fresh_scratch_dir("train", "online_sampler_reference");
  fs::path lists = test::write_train_lists(dir, 2, 3, /*with_ref=*/true);
  // Every weight trains, and no frozen copy is needed (neither live nor LoRA).
  const Config config =
      tiny_config(lists, dir / "run",
                  {"loss.reference=sampler", "train.online_resample_every=2", "train.max_steps=4",
                   "train.lists_per_step=1", "optim.lr=0.05"});
  const PreferenceList fixed = sampled_list();
  std::vector<double> at_sampling;  // the policy's log-probs when it re-sampled (step 2)
  TrainerHooks hooks;
  hooks.resample = [&](LoadedModel& policy, std::int64_t) {
    TrainData data = encode_lists({fixed}, config, policy);
    at_sampling = reference_logps(*policy.model, data.examples[0], config);
    return std::vector<PreferenceList>{fixed};
  };
  ASSERT_EQ(run_and_record(config, hooks).size(), 4u);
  ASSERT_EQ(at_sampling.size(), 3u);

  const auto state = nlohmann::json::parse(
      read_file(dir / "run" / "checkpoints" / "step-4" / "trainer_state.json"));
  EXPECT_EQ(state["online"]["sampled_at"], 2);
  auto saved = online_lists_from_json(state["online"]["lists"]);
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_EQ(saved[0].ref_logps, at_sampling);
  // Not the initial weights' log-probs: the reference moved with the policy.
  LoadedModel initial = load_model(config);
  TrainData data = encode_lists({fixed}, config, initial);
  const std::vector<double> start = reference_logps(*initial.model, data.examples[0], config);
  EXPECT_GT(std::abs(start[0] - at_sampling[0]), 1e-3);
}

TEST(TrainerEvaluation, EvaluatingLeavesTheTrainingLossesUntouched) {
  fs::path dir = test::fresh_scratch_dir("train", "eval_hook");
  fs::path lists = test::write_train_lists(dir, 3, 3, /*with_ref=*/true);
  std::vector<std::string> extra = kLoraOnly;
  extra.insert(extra.end(), {"train.max_steps=5", "data.shuffle=true", "train.epochs=2"});
  std::vector<StepMetrics> plain = run_and_record(tiny_config(lists, dir / "plain", extra));

  // A careless evaluation: draws from every RNG and leaves the model in eval mode (dropout off).
  std::vector<std::int64_t> calls;
  TrainerHooks hooks;
  hooks.evaluate = [&](LoadedModel& policy, std::int64_t step) {
    calls.push_back(step);
    EXPECT_FALSE(torch::GradMode::is_enabled());
    policy.model->eval();
    torch::rand({64});
    global_rng()();
    return std::map<std::string, double>{{"grounding/acc@0.5", 0.25 * static_cast<double>(step)}};
  };
  extra.push_back("train.eval_every=2");
  std::vector<StepMetrics> evaluated =
      run_and_record(tiny_config(lists, dir / "evaluated", extra), hooks);
  EXPECT_EQ(calls, (std::vector<std::int64_t>{2, 4}));
  ASSERT_EQ(plain.size(), 5u);
  ASSERT_EQ(evaluated.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(evaluated[i].loss, plain[i].loss) << "step " << i + 1;  // bit for bit
    EXPECT_EQ(evaluated[i].grad_norm, plain[i].grad_norm) << "step " << i + 1;
  }
  // metrics.jsonl: the step lines, and an eval line after steps 2 and 4.
  std::vector<nlohmann::json> eval_lines;
  for (const auto& line : metrics_lines(dir / "evaluated")) {
    if (line.contains("eval/grounding/acc@0.5")) eval_lines.push_back(line);
  }
  ASSERT_EQ(eval_lines.size(), 2u);
  EXPECT_EQ(eval_lines[0]["step"], 2);
  EXPECT_EQ(eval_lines[0]["eval/grounding/acc@0.5"], 0.5);
  EXPECT_EQ(eval_lines[1]["step"], 4);
  EXPECT_EQ(eval_lines[1]["eval/grounding/acc@0.5"], 1.0);
  EXPECT_FALSE(eval_lines[0].contains("loss"));
}

}  // namespace
}  // namespace perpo
