// The demo's data stage: disjoint splits, a tokenizer that encodes every synthetic prompt and
// answer without <unk> and round-trips them, reuse on a second run, foreign folders refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "perpo/core/atomic_file.h"
#include "perpo/data/jsonl.h"
#include "perpo/demo/demo_data.h"
#include "perpo/tokenizer/chat_template.h"
#include "perpo/tokenizer/tokenizer.h"
#include "test_util.h"

namespace perpo {
namespace {

namespace fs = std::filesystem;

DemoDataPlan small_plan() {
  DemoDataPlan plan;
  plan.splits = {{"sft", 60}, {"val", 20}};
  plan.seed = 3;
  return plan;
}

TEST(DemoData, SplitsAreDisjointAndTheTokenizerCoversEveryText) {
  const fs::path dir = test::fresh_scratch_dir("demo", "data");
  const DemoData data = prepare_demo_data(dir, small_plan());
  ASSERT_EQ(data.sets.size(), 4u);
  EXPECT_FALSE(data.tokenizer_reused);
  std::set<std::string> ids;
  std::size_t total = 0;
  for (const DemoDataSet& set : data.sets) {
    EXPECT_FALSE(set.reused);
    const auto records = read_dataset(set.records, ReadOptions{});
    EXPECT_EQ(static_cast<int>(records.size()), set.count);
    for (const auto& r : records) ids.insert(r.id);
    total += records.size();
  }
  EXPECT_EQ(ids.size(), total);                // no record in two splits
  EXPECT_TRUE(ids.count("grounding-000060"));  // val starts where sft ends
  EXPECT_EQ(data.find("ocr", "val")->records, dir / "ocr-val" / "records.jsonl");

  // Every prompt and answer, also of the validation split the tokenizer never saw.
  const Tokenizer tokenizer(data.tokenizer);
  TokenizerConfig config;
  config.chat_template = "plain";
  const ChatTemplate chat(tokenizer, config);
  for (const DemoDataSet& set : data.sets) {
    for (const auto& r : read_dataset(set.records, ReadOptions{})) {
      const std::vector<int> prompt = chat.encode_prompt(r.prompt, true, 36);
      const std::vector<int> answer = chat.encode_answer(r.ground_truth);
      for (int id : prompt) ASSERT_NE(id, tokenizer.unk_id()) << r.prompt;
      for (int id : answer) ASSERT_NE(id, tokenizer.unk_id()) << r.ground_truth;
      EXPECT_EQ(tokenizer.decode(answer), r.ground_truth);
      EXPECT_NE(tokenizer.decode(prompt).find(r.prompt), std::string::npos) << r.prompt;
      if (r.task == "grounding") {
        EXPECT_EQ(answer.size(), 18u) << r.ground_truth;  // 17 pieces + </s>
      }
    }
  }
}

TEST(DemoData, ASecondRunReusesAndAChangedPlanRewrites) {
  const fs::path dir = test::fresh_scratch_dir("demo", "reuse");
  prepare_demo_data(dir, small_plan());
  const std::string model = read_file(dir / "tokenizer.model");
  const DemoData again = prepare_demo_data(dir, small_plan());
  for (const DemoDataSet& set : again.sets) EXPECT_TRUE(set.reused) << set.task << set.split;
  EXPECT_TRUE(again.tokenizer_reused);
  DemoDataPlan bigger = small_plan();
  bigger.splits[1].count = 25;
  const DemoData changed = prepare_demo_data(dir, bigger);
  EXPECT_TRUE(changed.find("grounding", "sft")->reused);
  EXPECT_FALSE(changed.find("grounding", "val")->reused);
  EXPECT_EQ(read_dataset(changed.find("grounding", "val")->records, ReadOptions{}).size(), 25u);
  EXPECT_TRUE(changed.tokenizer_reused);  // trained on sft only, which did not change
  EXPECT_EQ(read_file(dir / "tokenizer.model"), model);
}

TEST(DemoData, AForeignFolderInTheWayIsRefused) {
  const fs::path dir = test::fresh_scratch_dir("demo", "foreign");
  fs::create_directories(dir / "grounding-sft");
  write_file_atomic(dir / "grounding-sft" / "mine.txt", "user data");
  const std::string error = test::error_of([&] { prepare_demo_data(dir, small_plan()); });
  EXPECT_NE(error.find("perpo did not write"), std::string::npos) << error;
  EXPECT_EQ(read_file(dir / "grounding-sft" / "mine.txt"), "user data");
}

}  // namespace
}  // namespace perpo
