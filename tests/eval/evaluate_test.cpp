// Evaluation: metrics of hand-scored predictions (arithmetic in the comments), greedy answers
// equal to the decoder's, outputs written, bad records named or skipped.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "../generate/generate_test_util.h"
#include "perpo/core/atomic_file.h"
#include "perpo/eval/evaluate.h"
#include "test_util.h"

namespace perpo {
namespace {

Prediction make(const std::string& task, const std::string& answer, const std::string& truth,
                double reward = 0) {
  Prediction p;
  p.id = answer;
  p.task = task;
  p.answer = answer;
  p.ground_truth = truth;
  p.reward = reward;
  return p;
}

TEST(EvalMetrics, HandWorkedGroundingAndOcr) {
  Config config;
  const std::string box = "[0.1, 0.2, 0.5, 0.6]";  // 0.4 x 0.4 = 0.16
  std::vector<Prediction> predictions = {
      make("grounding", box, box, 1.0),                      // IoU 1
      make("grounding", "[0.1, 0.2, 0.3, 0.4]", box, 0.25),  // inside: 0.04 / 0.16 = 0.25
      make("grounding", "no idea", box, 0.0),                // unparsable, IoU 0
      make("grounding", "[0.3, 0.4, 0.7, 0.8]", box),        // overlap 0.2 x 0.2 = 0.04; 0.04/0.28
      make("ocr", "Total: 42", "Total: 42", 1.0),
      // "Tota1: 4" vs "Total: 42": 2 edits over 9 code points; no word in common.
      make("ocr", "Tota1: 4", "Total: 42", 7.0 / 9)};
  nlohmann::json m = eval_metrics(predictions, config);
  const auto& g = m["grounding"];
  EXPECT_EQ(g["count"], 4);
  EXPECT_DOUBLE_EQ(g["acc@0.5"].get<double>(), 0.25);  // only the exact box reaches 0.5
  EXPECT_NEAR(g["mean_iou"].get<double>(), (1.0 + 0.25 + 0.0 + 0.04 / 0.28) / 4, 1e-9);
  EXPECT_DOUBLE_EQ(g["unparsable"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(g["mean_reward"].get<double>(), 1.25 / 4);
  EXPECT_DOUBLE_EQ(g["acc@0.75"].get<double>(), 0.25);  // again only the exact box
  // Hits {1, 0, 0, 0}: sample variance (0.75^2 + 3 * 0.25^2) / 3 = 0.25, SE sqrt(0.25 / 4) = 0.25;
  // the same for acc@0.75 and for unparsable {0, 0, 1, 0}.
  EXPECT_DOUBLE_EQ(g["acc@0.5_se"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(g["acc@0.75_se"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(g["unparsable_se"].get<double>(), 0.25);
  EXPECT_TRUE(g.contains("mean_iou_se") && g.contains("mean_reward_se"));
  const auto& o = m["ocr"];
  EXPECT_EQ(o["count"], 2);
  EXPECT_NEAR(o["edit_distance"].get<double>(), (0.0 + 2.0 / 9) / 2, 1e-9);
  EXPECT_DOUBLE_EQ(o["f1"].get<double>(), 0.5);  // 1 and 0
  EXPECT_DOUBLE_EQ(o["precision"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(o["recall"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(o["bleu"].get<double>(), 0.5);  // identical texts 1, no shared word 0
  EXPECT_DOUBLE_EQ(o["exact_match"].get<double>(), 0.5);
  // {1, 0}: sample variance 2 * 0.25 / 1 = 0.5, SE sqrt(0.5 / 2) = 0.5.
  EXPECT_DOUBLE_EQ(o["exact_match_se"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(o["f1_se"].get<double>(), 0.5);
  EXPECT_NEAR(o["edit_distance_se"].get<double>(), 1.0 / 9, 1e-12);  // {0, 2/9}: half the gap
  EXPECT_FALSE(o.contains("acc@0.5"));
  EXPECT_EQ(m["evaluated"], 6);

  config.eval.iou_threshold = 0.2;  // now 0.25 counts too: acc@0.2 = 2/4
  nlohmann::json loose = eval_metrics(predictions, config);
  EXPECT_DOUBLE_EQ(loose["grounding"]["acc@0.2"].get<double>(), 0.5);
  EXPECT_FALSE(loose["grounding"].contains("acc@0.5"));
  EXPECT_DOUBLE_EQ(loose["grounding"]["acc@0.75"].get<double>(), 0.25);
  nlohmann::json flat = flat_metrics(loose);
  EXPECT_DOUBLE_EQ(flat["grounding/acc@0.2"].get<double>(), 0.5);
  EXPECT_EQ(flat["eval/evaluated"], 6);
}

TEST(EvalMetrics, BoxesAreReadInTheUnitsTheAnswersWereScoredIn) {
  Config config;
  const std::string box = "[0.1, 0.2, 0.5, 0.6]";
  // Qwen2.5-VL's answer in a 100 x 50 frame: 10 / 100 = 0.1, 10 / 50 = 0.2, ... : the exact box.
  Prediction pixels = make("grounding", R"({"bbox_2d": [10, 10, 50, 30]})", box, 1.0);
  pixels.box_parse = {100, 50, BoxUnits::kPixels};
  nlohmann::json m = eval_metrics({pixels}, config);
  EXPECT_DOUBLE_EQ(m["grounding"]["acc@0.5"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(m["grounding"]["mean_iou"].get<double>(), 1.0);
  // Read by the infer rule without the frame, the same text is unusable.
  pixels.box_parse = {};
  m = eval_metrics({pixels}, config);
  EXPECT_DOUBLE_EQ(m["grounding"]["acc@0.5"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(m["grounding"]["unparsable"].get<double>(), 1.0);
}

class Evaluate : public test::TinyRecordsTest {
 protected:
  Evaluate() : TinyRecordsTest("eval", 4) {}
};

TEST_F(Evaluate, GreedyAnswersScoredAndWritten) {
  config.eval.batch_size = 2;
  config.eval.max_new_tokens = 5;
  RecordPrompts prompts(*model, test::tiny_tokenizer(), config);
  EvalResult result = evaluate(*model, prompts, records, config);
  ASSERT_EQ(result.predictions.size(), 5u);
  GenerationOptions greedy = test::decoding(5, SamplerOptions::greedy_decoding());
  greedy.stop_ids = {test::tiny_tokenizer().eos_id()};
  for (std::size_t r = 0; r < 5; ++r) {
    GenerationPrompt prompt = prompts.build(records[r]);
    prompt.seeds = {0};
    auto alone = generate(*model, {prompt}, greedy);
    EXPECT_EQ(result.predictions[r].answer, prompts.answer_text(alone[0][0].ids));
    EXPECT_EQ(result.predictions[r].id, records[r].id);
  }
  EXPECT_EQ(result.metrics["grounding"]["count"], 5);
  EXPECT_EQ(result.metrics["records"], 5);
  nlohmann::json again = eval_metrics(result.predictions, config);
  EXPECT_EQ(again["grounding"], result.metrics["grounding"]);

  write_eval_outputs(result, dir);
  nlohmann::json written = nlohmann::json::parse(read_file(dir / "metrics.json"));
  EXPECT_EQ(written, result.metrics);
  std::ifstream lines(dir / "predictions.jsonl");
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    nlohmann::json p = nlohmann::json::parse(line);
    EXPECT_EQ(p["id"], records[count].id);
    EXPECT_TRUE(p.contains("answer") && p.contains("reward") && p.contains("notes"));
    ++count;
  }
  EXPECT_EQ(count, 5);
  const std::string text = eval_summary_text(result);
  EXPECT_NE(text.find("evaluated 5 of 5 records (0 skipped)"), std::string::npos) << text;
  EXPECT_NE(text.find("grounding: acc@0.5 "), std::string::npos) << text;
  EXPECT_NE(text.find(" count 5"), std::string::npos) << text;
  EXPECT_NE(text.find(" mean_iou 0."), std::string::npos) << text;
  EXPECT_NE(text.find(" (se 0."), std::string::npos) << text;
  EXPECT_EQ(text.find("_se"), std::string::npos) << text;  // standard errors sit beside means

  config.eval.limit = 2;
  EXPECT_EQ(evaluate(*model, prompts, records, config).predictions.size(), 2u);
}

TEST_F(Evaluate, BadRecordsNamedOrSkipped) {
  records[3].image_path = dir / "gone.png";
  RecordPrompts prompts(*model, test::tiny_tokenizer(), config);
  std::string message = test::error_of([&] { evaluate(*model, prompts, records, config); });
  EXPECT_NE(message.find("data.jsonl:4"), std::string::npos) << message;
  config.data.on_bad_record = "skip";
  EvalResult result = evaluate(*model, prompts, records, config);
  EXPECT_EQ(result.predictions.size(), 4u);
  EXPECT_EQ(result.metrics["skipped"], 1);
  EXPECT_EQ(result.metrics["evaluated"], 4);
}

}  // namespace
}  // namespace perpo
