// loss.name grpo in the trainer: offline lists without the sampling policy's token log-probs are
// refused (naming the field), online re-sampling keeps them (their sums are the sampling model's
// list log-probs), an on-policy run never clips, a SIGKILLed online run resumes bit for bit, and
// drop_all_equal leaves equal-reward lists out of the step.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "perpo/config/config_io.h"
#include "perpo/core/error.h"
#include "perpo/generate/list_logps.h"
#include "perpo/model/load.h"
#include "perpo/model/run_checkpoint.h"
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

Config grpo_config(const fs::path& data, const fs::path& run_dir,
                   const std::vector<std::string>& extra) {
  std::vector<std::string> overrides = {"loss.name=grpo",         "reward.name=ocr_edit",
                                        "sampling.num_answers=3", "sampling.max_new_tokens=6",
                                        "train.lists_per_step=1", "optim.lr=0.05"};
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  return test::tiny_config(data, run_dir, overrides);
}

using test::metrics_lines;

/// The step lines of metrics.jsonl (those with a loss), in order.
std::vector<nlohmann::json> step_lines(const fs::path& run_dir) {
  std::vector<nlohmann::json> steps;
  for (auto& line : metrics_lines(run_dir)) {
    if (line.contains("loss")) steps.push_back(line);
  }
  return steps;
}

TEST(TrainerGrpo, OfflineListsWithoutSampleTokenLogpsAreRefusedNamingTheField) {
  fs::path dir = test::fresh_scratch_dir("train", "grpo_refused");
  fs::path lists = test::write_train_lists(dir, 2, 3, /*with_ref=*/true);
  const Config config = grpo_config(lists, dir / "run", {"train.max_steps=2"});
  try {
    run_training(config, {}, {});
    ADD_FAILURE() << "grpo on lists without sample_token_logps was accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error());
    const std::string text = e.what();
    EXPECT_NE(text.find("'sample_token_logps'"), std::string::npos) << text;
    EXPECT_NE(text.find("sampling.token_logps=true"), std::string::npos) << text;
    EXPECT_NE(text.find("train.online_resample_every=1"), std::string::npos) << text;
  }
  EXPECT_FALSE(fs::exists(dir / "run"));  // refused before anything was written
}

TEST(TrainerGrpo, OnlineSamplerKeepsTheSamplingModelsTokenLogps) {
  fs::path dir = test::fresh_scratch_dir("train", "grpo_sampler_tokens");
  fs::path lists = test::write_train_lists(dir, 2, 3, /*with_ref=*/true);
  const Config config =
      grpo_config(lists, dir / "run", {"train.online_resample_every=2", "run.seed=4"});
  LoadedModel policy = load_model(config);
  const TrainData data = load_train_data(config, policy);
  std::vector<DatasetRecord> records;
  for (const TrainExample& example : data.examples) records.push_back(example.record);
  OnlineSampler online(config, records, 2);
  // grpo's first call is at step 0: records [0, 2), then [2, 4) mod 2 at step 2.
  EXPECT_EQ(online.records_for(0)[0].id, records[0].id);
  EXPECT_EQ(online.records_for(2)[0].id, records[0].id);
  const std::vector<PreferenceList> got = online(policy, 0);
  ASSERT_EQ(got.size(), 2u);
  const TrainData encoded = encode_lists(got, config, policy);
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].sample_token_logps.size(), got[i].answers.size());
    const std::vector<double> sums = reference_logps(*policy.model, encoded.examples[i], config);
    for (std::size_t a = 0; a < sums.size(); ++a) {
      const auto& row = got[i].sample_token_logps[a];
      EXPECT_EQ(row.size(), encoded.examples[i].list.answer_ids[a].size());
      double total = 0;
      for (double v : row) total += v;
      // reference_logps sums in float32 (score_list), the rows are summed here in double.
      EXPECT_NEAR(total, sums[a], 1e-6 * std::abs(sums[a])) << "list " << i << " answer " << a;
    }
  }
  // At K = 1 every list is trained by the weights that sampled it: nothing is stored.
  Config on_policy = config;
  on_policy.train.online_resample_every = 1;
  EXPECT_TRUE(OnlineSampler(on_policy, records, 1)(policy, 0)[0].sample_token_logps.empty());
}

TEST(TrainerGrpo, OnPolicyOnlineRunNeverClipsAndLogsItsMetrics) {
  fs::path dir = test::fresh_scratch_dir("train", "grpo_on_policy");
  fs::path lists = test::write_train_lists(dir, 2, 3, /*with_ref=*/false);
  const Config config =
      grpo_config(lists, dir / "run", {"train.online_resample_every=1", "train.max_steps=3"});
  const TrainSummary summary = run_training(config, {}, {});
  EXPECT_EQ(summary.steps, 3);
  EXPECT_EQ(summary.resamples, 3);  // before steps 1, 2 and 3
  const auto steps = step_lines(dir / "run");
  ASSERT_EQ(steps.size(), 3u);
  for (const auto& step : steps) {
    EXPECT_EQ(step.at("clip_low").get<double>(), 0.0) << step.dump();  // the ratio is exactly 1
    EXPECT_EQ(step.at("clip_high").get<double>(), 0.0) << step.dump();
    EXPECT_EQ(step.at("kl").get<double>(), 0.0);
    EXPECT_GT(step.at("answer_tokens").get<double>(), 0.0);
    EXPECT_TRUE(step.contains("mean_reward"));
    EXPECT_TRUE(step.contains("reward_std"));
    EXPECT_TRUE(step.contains("lists_dropped"));
  }
}

TEST(TrainerGrpo, SigkilledOnlineRunResumesBitForBit) {
  // LoRA alone trains (dropout on), the KL term reads the frozen start through the adapters
  // switched off, the lists are re-sampled every 2 steps (their token log-probs are the old
  // policy, so steps 2, 4 and 6 are off-policy), DAPO's clip-higher and dynamic sampling.
  fs::path dir = test::fresh_scratch_dir("train", "grpo_sigkill");
  fs::path lists = test::write_train_lists(dir, 3, 3, /*with_ref=*/false);
  const std::vector<std::string> extra = {"model.lora.enabled=true",
                                          "model.lora.r=4",
                                          "model.lora.alpha=8",
                                          "model.lora.dropout=0.2",
                                          "model.freeze_vision=true",
                                          "model.freeze_projector=true",
                                          "loss.grpo.variant=dapo",
                                          "loss.grpo.eps_high=0.28",
                                          "loss.grpo.kl_beta=0.1",
                                          "loss.grpo.drop_all_equal=true",
                                          "train.online_resample_every=2",
                                          "train.max_steps=6",
                                          "train.grad_accum=2",
                                          "train.checkpoint_every=1",
                                          "data.shuffle=true"};
  const Config full = grpo_config(lists, dir / "full", extra);
  const TrainSummary straight = run_training(full, {}, {});
  EXPECT_EQ(straight.steps, 6);
  EXPECT_EQ(straight.reference_source, "adapters-off");

  const Config part = grpo_config(lists, dir / "part", extra);
  // Killed writing the checkpoint of step 4: steps 1-3 are kept, step 4's metrics line too.
  ASSERT_TRUE(test::killed_by_sigkill(test::train_killed_while_checkpointing(part, 4)));
  ASSERT_EQ(list_run_checkpoints(dir / "part" / "checkpoints").back().filename(), "step-3");
  run_training(part, {.resume = true, .force = false, .config_file = {}}, {});

  const auto a = step_lines(dir / "full");
  const auto b = step_lines(dir / "part");
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 6u);
  double clipped = 0, kl = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (const char* key : {"step", "loss", "grad_norm", "clip_low", "clip_high", "kl",
                            "lists_dropped", "mean_reward"}) {
      EXPECT_EQ(a[i].at(key), b[i].at(key)) << key << " at step " << i + 1;  // bit for bit
    }
    clipped += a[i].at("clip_low").get<double>() + a[i].at("clip_high").get<double>();
    kl += a[i].at("kl").get<double>();
  }
  EXPECT_GT(kl, 0.0) << "the KL term should see the policy leave the frozen start";
  (void)clipped;  // how many tokens clip depends on the lr; the equality above is the check
  test::expect_same_weights(dir / "full" / "checkpoints" / "step-6",
                            dir / "part" / "checkpoints" / "step-6");
}

TEST(TrainerGrpo, DroppedListsAreLeftOutOfTheStep) {
  // Offline lists with token log-probs: list 0 has equal rewards. With drop_all_equal and 2 lists
  // per step, the step trains on list 1 alone, as a run on list 1 alone does.
  fs::path dir = test::fresh_scratch_dir("train", "grpo_dropped");
  fs::path lists = test::write_train_lists(dir, 2, 3, /*with_ref=*/false);
  const Config probe = grpo_config(lists, dir / "probe", {});
  LoadedModel model = load_model(probe);
  TrainData data = load_train_data(probe, model);
  std::vector<nlohmann::json> rows;
  {
    std::ifstream in(lists);
    std::string line;
    int k = 0;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto json = nlohmann::json::parse(line);
      const auto& example = data.examples[k];
      std::vector<std::vector<double>> tokens;
      for (const auto& answer : example.list.answer_ids) {
        tokens.emplace_back(answer.size(), -1.5);  // an old policy that is not the start
      }
      json["sample_token_logps"] = tokens;
      if (k == 0) json["rewards"] = {0.5, 0.5, 0.5};
      rows.push_back(json);
      ++k;
    }
  }
  ASSERT_EQ(rows.size(), 2u);
  auto write = [&](const fs::path& path, const std::vector<nlohmann::json>& chosen) {
    std::ofstream out(path);
    for (const auto& row : chosen) out << row.dump() << "\n";
  };
  write(dir / "both.jsonl", rows);
  write(dir / "second.jsonl", {rows[1]});
  const std::vector<std::string> extra = {"train.max_steps=1", "loss.grpo.drop_all_equal=true",
                                          "data.shuffle=false"};
  Config both = grpo_config(dir / "both.jsonl", dir / "both", extra);
  both.train.lists_per_step = 2;
  Config second = grpo_config(dir / "second.jsonl", dir / "second", extra);
  run_training(both, {}, {});
  run_training(second, {}, {});
  const auto a = step_lines(dir / "both");
  const auto b = step_lines(dir / "second");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].at("lists").get<int>(), 2);
  EXPECT_EQ(a[0].at("lists_dropped").get<int>(), 1);
  EXPECT_EQ(a[0].at("loss"), b[0].at("loss"));
  EXPECT_EQ(a[0].at("grad_norm"), b[0].at("grad_norm"));
  test::expect_same_weights(dir / "both" / "checkpoints" / "step-1",
                            dir / "second" / "checkpoints" / "step-1");
}

}  // namespace
}  // namespace perpo
