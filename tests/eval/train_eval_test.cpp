// train.eval_every wired to the eval module: a tiny run writes eval lines with the eval metrics at
// the right steps, and its training losses are those of the same run without evaluation.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "perpo/config/config_io.h"
#include "perpo/eval/train_eval.h"
#include "perpo/train/tensorboard.h"
#include "perpo/train/trainer.h"
#include "tensorboard_reader.h"
#include "test_util.h"
#include "train_fixture.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;

Config run_config(const fs::path& dir, const std::string& name,
                  const std::vector<std::string>& extra) {
  fs::path lists = test::write_train_lists(dir / "data", 3, 3, /*with_ref=*/true);
  auto overrides = test::tiny_train_overrides(lists, dir / name);
  // Dropout (LoRA) and shuffling make the losses depend on the RNG streams and the data order.
  overrides.insert(
      overrides.end(),
      {"model.lora.enabled=true", "model.lora.r=4", "model.lora.alpha=8", "model.lora.dropout=0.2",
       "train.lists_per_step=1", "train.max_steps=5", "train.epochs=2", "data.shuffle=true",
       "eval.max_new_tokens=6", "eval.batch_size=2", "run.tensorboard=true"});
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  return load_config("", overrides);
}

std::vector<StepMetrics> train(const Config& config, TrainerHooks hooks = {}) {
  std::vector<StepMetrics> steps;
  hooks.on_step = [&](const StepMetrics& m) { steps.push_back(m); };
  run_training(config, {}, hooks);
  return steps;
}

TEST(TrainEval, EvalEveryWritesEvalMetricsAndKeepsTheLosses) {
  fs::path dir = test::fresh_scratch_dir("eval", "train_eval");
  fs::path records = test::write_train_records(dir / "eval_data", 3);
  std::vector<StepMetrics> plain = train(run_config(dir, "plain", {}));

  Config config = run_config(
      dir, "evaluated", {"train.eval_every=2", "data.eval=" + records.string(), "eval.limit=2"});
  TrainerHooks hooks;
  hooks.evaluate = training_evaluator(config);
  std::vector<StepMetrics> evaluated = train(config, hooks);
  ASSERT_EQ(plain.size(), 5u);
  ASSERT_EQ(evaluated.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(evaluated[i].loss, plain[i].loss) << "step " << i + 1;  // bit for bit
    EXPECT_EQ(evaluated[i].grad_norm, plain[i].grad_norm) << "step " << i + 1;
  }

  std::ifstream in(dir / "evaluated" / "metrics.jsonl");
  std::vector<nlohmann::json> eval_lines;
  std::string line;
  int step_lines = 0;
  while (std::getline(in, line)) {
    auto json = nlohmann::json::parse(line);
    if (json.contains("loss")) ++step_lines;
    if (json.contains("eval/grounding/acc@0.5")) eval_lines.push_back(json);
  }
  EXPECT_EQ(step_lines, 5);
  ASSERT_EQ(eval_lines.size(), 2u);
  for (std::size_t k = 0; k < 2; ++k) {
    const nlohmann::json& e = eval_lines[k];
    EXPECT_EQ(e["step"], 2 * (k + 1));
    EXPECT_EQ(e["eval/grounding/count"], 2);  // eval.limit of the 3 records
    EXPECT_EQ(e["eval/records"], 2);
    EXPECT_EQ(e["eval/skipped"], 0);
    for (const char* key : {"eval/grounding/acc@0.5", "eval/grounding/mean_iou",
                            "eval/grounding/unparsable", "eval/grounding/mean_reward"}) {
      ASSERT_TRUE(e[key].is_number()) << key;
      const double value = e[key].get<double>();
      EXPECT_TRUE(std::isfinite(value) && value >= 0 && value <= 1) << key << " " << value;
    }
  }

  // TensorBoard gets the same eval scalars.
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir / "evaluated" / "tensorboard")) {
    files.push_back(entry.path());
  }
  ASSERT_EQ(files.size(), 1u);
  int eval_scalars = 0;
  for (const test::ScalarEvent& event : test::read_tensorboard_scalars(files[0])) {
    if (event.tag == "eval/grounding/mean_iou") {
      EXPECT_EQ(event.step, 2 * (eval_scalars + 1));
      ++eval_scalars;
    }
  }
  EXPECT_EQ(eval_scalars, 2);
}

TEST(TrainEval, NeedsEvaluationRecords) {
  fs::path dir = test::fresh_scratch_dir("eval", "train_eval_bad");
  Config config = run_config(dir, "run", {"train.eval_every=2"});
  std::string message = test::error_of([&] { training_evaluator(config); });
  EXPECT_NE(message.find("data.eval"), std::string::npos) << message;
  config.data.eval = (dir / "none.jsonl").string();
  message = test::error_of([&] { training_evaluator(config); });
  EXPECT_NE(message.find("none.jsonl"), std::string::npos) << message;
}

}  // namespace
}  // namespace perpo
