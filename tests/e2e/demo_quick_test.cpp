// End to end: `perpo demo --quick` runs every stage, and every stage's files exist and parse;
// the metrics are finite; stage 1 answers with boxes; a second run reuses every stage. One run of
// the demo serves all checks (it takes minutes), so this is one test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "perpo/data/jsonl.h"
#include "perpo/reward/box.h"
#include "perpo/reward/reward.h"
#include "run_perpo.h"
#include "test_paths.h"

namespace fs = std::filesystem;
using perpo::DatasetRecord;
using perpo::test::run_perpo;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

nlohmann::json read_json(const fs::path& path) {
  EXPECT_TRUE(fs::exists(path)) << path;
  return nlohmann::json::parse(read_text(path));
}

void expect_finite_metrics(const nlohmann::json& metrics, const std::string& where) {
  ASSERT_TRUE(metrics.is_object()) << where;
  EXPECT_FALSE(metrics.empty()) << where;
  for (const auto& [name, value] : metrics.items()) {
    ASSERT_TRUE(value.is_number()) << where << " " << name;
    EXPECT_TRUE(std::isfinite(value.get<double>())) << where << " " << name;
  }
}

// The better of two trivial answers on a grounding split: the whole image, and the mean of the
// split's ground-truth boxes (an oracle of the split's average, so a fair upper bound of "not
// looking at the image").
struct TrivialBoxes {
  double mean_iou = 0;
  double acc_05 = 0;
};

TrivialBoxes trivial_boxes(const fs::path& records_file) {
  std::vector<perpo::Box> truths;
  for (const DatasetRecord& record : perpo::read_dataset(records_file, {})) {
    const auto found = perpo::parse_boxes(record.ground_truth);
    EXPECT_EQ(found.size(), 1u) << record.ground_truth;
    if (!found.empty()) truths.push_back(found.front().box);
  }
  EXPECT_FALSE(truths.empty());
  perpo::Box mean{0, 0, 0, 0};
  for (const auto& box : truths) {
    mean.x1 += box.x1 / truths.size();
    mean.y1 += box.y1 / truths.size();
    mean.x2 += box.x2 / truths.size();
    mean.y2 += box.y2 / truths.size();
  }
  TrivialBoxes best;
  for (const perpo::Box& guess : {perpo::Box{0, 0, 1, 1}, mean}) {
    double iou_sum = 0, hits = 0;
    for (const auto& truth : truths) {
      const double value = perpo::iou(guess, truth);
      iou_sum += value;
      hits += value >= 0.5 ? 1 : 0;
    }
    best.mean_iou = std::max(best.mean_iou, iou_sum / truths.size());
    best.acc_05 = std::max(best.acc_05, hits / truths.size());
  }
  return best;
}

// Margins over the trivial boxes. Stage 1's progress varies a lot with the seed and with tiny
// numeric differences (quick plan's stage 1 on 200 test records: seed 1 mean IoU 0.594, Acc@0.5
// 73.5; seed 3 0.258 / 24.0, and 0.161 with SDPA attention instead of the hand-written path;
// trivial boxes about 0.1 / 1.0), so this test runs seed 1 and asks for about four standard
// errors above the trivial boxes rather than the measured gap.
constexpr double kMeanIouMargin = 0.08;
constexpr double kAccMargin = 0.1;

}  // namespace

TEST(DemoQuick, EveryStageWritesParsableFilesAndStageOneBeatsTrivialBoxes) {
  const fs::path out = fs::path(perpo::test::kScratchDir) / "demo-quick";
  fs::remove_all(out);
  fs::create_directories(out.parent_path());
  perpo::test::PerpoRun run = run_perpo("demo --quick --seed 1 --out " + out.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const auto& stage :
       {"[demo] data", "[demo] sft", "[demo] sample", "[demo] arm", "[demo] eval"}) {
    EXPECT_NE(run.output.find(stage), std::string::npos) << stage << "\n" << run.output;
  }

  // The quick plan's tasks: grounding always (the stage-1 check below needs it).
  const auto summary = read_json(out / "summary.json");
  std::vector<std::string> tasks;
  for (const auto& [task, metrics] : summary["arms"]["start"].items()) tasks.push_back(task);
  ASSERT_NE(std::find(tasks.begin(), tasks.end(), "grounding"), tasks.end());

  // data: every split of every task parses; the tokenizer exists.
  for (const auto& task : tasks) {
    for (const auto& split : {"sft", "pref", "val", "test"}) {
      const fs::path file = out / "data" / (task + "-" + split) / "records.jsonl";
      EXPECT_FALSE(perpo::read_dataset(file, {}).empty()) << file;
    }
  }
  EXPECT_GT(fs::file_size(out / "data" / "tokenizer.model"), 0u);

  // stage 1 and the arms: exported models and metrics.jsonl lines that parse and are finite.
  EXPECT_TRUE(fs::exists(out / "sft" / "model" / "config.json"));
  const std::vector<std::string> arms = {"sft", "dpo", "perpo"};
  for (const auto& arm : arms) {
    EXPECT_TRUE(fs::exists(out / "arms" / arm / "model" / "config.json")) << arm;
    std::ifstream lines(out / "arms" / arm / "run" / "metrics.jsonl");
    std::string line;
    int steps = 0;
    while (std::getline(lines, line)) {
      const auto record = nlohmann::json::parse(line);
      if (!record.contains("loss")) continue;
      EXPECT_TRUE(std::isfinite(record["loss"].get<double>())) << arm << ": " << line;
      ++steps;
    }
    EXPECT_GT(steps, 0) << arm;
  }

  // lists: N sampled answers + the ground truth, rewards in [0, 1].
  const auto lists = perpo::read_preference_lists(out / "lists" / "lists.jsonl", {});
  ASSERT_FALSE(lists.empty());
  for (const auto& list : lists) {
    // quick: N = 4 samples, + the ground truth unless a sample equals it exactly.
    ASSERT_TRUE(list.answers.size() == 4u || list.answers.size() == 5u) << list.record.id;
    ASSERT_EQ(list.rewards.size(), list.answers.size()) << list.record.id;
    EXPECT_EQ(list.ref_logps.size(), list.answers.size()) << list.record.id;
    const auto truth =
        std::find(list.answers.begin(), list.answers.end(), list.record.ground_truth);
    ASSERT_NE(truth, list.answers.end()) << list.record.id;
    EXPECT_DOUBLE_EQ(list.rewards[truth - list.answers.begin()], 1.0);
    for (double reward : list.rewards) EXPECT_TRUE(reward >= 0 && reward <= 1) << reward;
  }

  // summary.json: arm -> task -> metric, all finite; seed and stage seconds.
  EXPECT_EQ(summary["seed"].get<int>(), 1);
  for (const auto& stage : {"data", "sft", "sample", "arm-sft", "arm-dpo", "arm-perpo", "eval"}) {
    ASSERT_TRUE(summary["stage_seconds"].contains(stage)) << stage;
    EXPECT_GE(summary["stage_seconds"][stage].get<double>(), 0.0) << stage;
  }
  for (const auto& arm : {"start", "sft", "dpo", "perpo"}) {
    for (const auto& task : tasks) {
      expect_finite_metrics(summary["arms"][arm][task], std::string(arm) + "/" + task);
    }
    EXPECT_EQ(summary["arms"][arm]["grounding"]["n"].get<double>(), 200.0);
  }

  // Stage 1 learned the task: most answers are boxes, and its greedy boxes on the test split are
  // clearly better than the trivial boxes (the whole image; the mean ground-truth box of the same
  // records) by mean IoU and by Acc@0.5.
  const auto& start = summary["arms"]["start"]["grounding"];
  EXPECT_LT(start["unparsable"].get<double>(), 0.05);
  const TrivialBoxes trivial = trivial_boxes(out / "data" / "grounding-test" / "records.jsonl");
  EXPECT_GT(start["mean_iou"].get<double>(), trivial.mean_iou + kMeanIouMargin)
      << "trivial mean IoU " << trivial.mean_iou;
  EXPECT_GT(start["acc@0.5"].get<double>(), trivial.acc_05 + kAccMargin)
      << "trivial Acc@0.5 " << trivial.acc_05;

  // The report.
  EXPECT_NE(read_text(out / "report.md").find("acc@0.5"), std::string::npos);

  // A second run reuses every stage and gives the same table.
  perpo::test::PerpoRun again = run_perpo("demo --quick --seed 1 --out " + out.string());
  ASSERT_EQ(again.exit_code, 0) << again.output;
  for (const auto& stage : {"data", "sft", "sample"}) {
    EXPECT_NE(again.output.find(std::string("[demo] ") + stage), std::string::npos);
  }
  EXPECT_EQ(std::count_if(arms.begin(), arms.end(),
                          [&](const std::string& arm) {
                            return again.output.find(arm + ": reused") != std::string::npos;
                          }),
            3)
      << again.output;
  EXPECT_EQ(read_json(out / "summary.json")["arms"], summary["arms"]);
}
