// The demo's greedy evaluation goes through the eval module: its metrics are eval_metrics' under
// the demo's names (with "n"), its answers evaluate()'s, and a hand-made exact match shows up
// with the standard error worked out in the comment.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../generate/generate_test_util.h"
#include "perpo/demo/pipeline_decode.h"
#include "perpo/eval/evaluate.h"
#include "test_util.h"

namespace perpo {
namespace {

class DemoEvaluate : public test::TinyRecordsTest {
 protected:
  DemoEvaluate() : TinyRecordsTest("demo-evaluate", 4) {}
  void SetUp() override {
    TinyRecordsTest::SetUp();
    config.eval.max_new_tokens = 5;
  }
};

TEST_F(DemoEvaluate, GroundingMetricsAreTheEvalModules) {
  DemoDecoder decoder(*model, test::tiny_tokenizer(), config);
  const TaskMetrics m = decoder.evaluate(records, 2);
  std::vector<std::string> names;
  for (const auto& [name, value] : m.values) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"acc@0.5", "acc@0.5_se", "acc@0.75", "acc@0.75_se",
                                             "mean_iou", "mean_iou_se", "n", "unparsable",
                                             "unparsable_se"}));
  EXPECT_EQ(m.values.at("n"), 5.0);

  RecordPrompts prompts(*model, test::tiny_tokenizer(), config);
  const EvalResult result = evaluate(*model, prompts, records, config);
  ASSERT_EQ(m.predictions.size(), 5u);
  for (std::size_t r = 0; r < 5; ++r) {
    EXPECT_EQ(m.predictions[r], result.predictions[r].answer);
    EXPECT_EQ(m.scores[r], result.predictions[r].reward);
  }
  for (const auto& [name, value] : m.values) {
    if (name == "n") continue;
    EXPECT_EQ(value, result.metrics["grounding"][name].get<double>()) << name;
  }
}

TEST_F(DemoEvaluate, OcrExactMatchWithStandardError) {
  for (DatasetRecord& record : records) {
    record.task = "ocr";
    record.ground_truth = "zq zq zq";
  }
  DemoDecoder decoder(*model, test::tiny_tokenizer(), config);
  const std::string first = decoder.evaluate(records).predictions.at(0);
  ASSERT_FALSE(first.empty());
  ASSERT_NE(first, "zq zq zq");
  records[0].ground_truth = first;  // record 0 now matches exactly, the other four do not
  const TaskMetrics m = decoder.evaluate(records);
  // Exact matches {1, 0, 0, 0, 0}: mean 0.2; squared deviations 0.64 + 4 * 0.04 = 0.8, sample
  // variance 0.8 / 4 = 0.2, SE sqrt(0.2 / 5) = 0.2.
  EXPECT_DOUBLE_EQ(m.values.at("exact_match"), 0.2);
  EXPECT_NEAR(m.values.at("exact_match_se"), 0.2, 1e-12);
  EXPECT_DOUBLE_EQ(m.scores[0], 1.0);  // ocr_edit: 1 - normalised edit distance 0
  EXPECT_TRUE(m.values.count("edit_distance") && m.values.count("f1_se"));
  EXPECT_FALSE(m.values.count("bleu"));  // the demo's table keeps its own metrics

  records[1].task = "grounding";
  const std::string message = test::error_of([&] { decoder.evaluate(records); });
  EXPECT_NE(message.find("task 'grounding' in a 'ocr' evaluation set"), std::string::npos)
      << message;
}

}  // namespace
}  // namespace perpo
