// `perpo eval` end to end: predictions and metrics written; a checkpoint whose vocabulary does
// not fit the tokenizer is exit 2 naming both.
#include <gtest/gtest.h>

#include "generate_commands_support.h"
#include "run_perpo.h"

namespace {

namespace fs = std::filesystem;
using perpo::test::read_jsonl;
using perpo::test::run_perpo;

TEST(CliEval, WritesPredictionsAndMetrics) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_eval", "basic");
  const fs::path config = perpo::test::write_tiny_setup(dir, 4);
  auto r = run_perpo("eval --config " + config.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("evaluated 4 of 4 records (0 skipped)"), std::string::npos) << r.output;
  auto predictions = read_jsonl(dir / "run" / "predictions.jsonl");
  ASSERT_EQ(predictions.size(), 4u);
  for (const auto& p : predictions) {
    EXPECT_TRUE(p.contains("answer") && p.contains("reward") && p.contains("notes")) << p;
  }
  auto metrics = nlohmann::json::parse(perpo::test::slurp_file(dir / "run" / "metrics.json"));
  EXPECT_EQ(metrics["grounding"]["count"], 4);
  for (const char* key : {"acc@0.5", "mean_iou", "unparsable"}) {
    EXPECT_TRUE(metrics["grounding"].contains(key)) << key;
  }
  // Greedy: a second run gives the same predictions.
  r = run_perpo("eval --config " + config.string() + " --out " + (dir / "again").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_jsonl(dir / "again" / "predictions.jsonl"), predictions);
}

TEST(CliEval, MismatchedCheckpointAndTokenizerIsExitTwo) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_eval", "mismatch");
  const fs::path config = perpo::test::write_tiny_setup(dir, 2);
  const fs::path checkpoint =
      fs::path(perpo::test::kTestsDir) / "fixtures" / "model" / "tiny_old_untied_gqa";
  auto r = run_perpo("eval --config " + config.string() + " --checkpoint " + checkpoint.string() +
                     " image.size=32");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("tiny.model"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("96"), std::string::npos) << r.output;  // the model's vocabulary
}

}  // namespace
