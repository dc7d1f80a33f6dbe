// DemoPlan::set: `perpo demo --set key=value` parses numbers, lists and flags, checks the ranges
// of the settings that have one, and names what it refuses; describe() lists every setting.
#include <gtest/gtest.h>

#include <algorithm>

#include "perpo/demo/pipeline.h"
#include "test_util.h"

namespace perpo {
namespace {

bool described(const DemoPlan& plan, const std::string& key, const std::string& value) {
  const auto lines = plan.describe();
  return std::find(lines.begin(), lines.end(), std::make_pair(key, value)) != lines.end();
}

TEST(DemoPlan, SetParsesEachKindOfSetting) {
  DemoPlan plan;
  plan.set("answers=12");
  plan.set("warmup_share=0.2");
  plan.set("arm_lr.dpo=3e-5");
  plan.set("tasks=grounding,ocr");
  plan.set("ground_truth_in_list=false");
  plan.set("ocr_max_words=1");
  plan.set("vocab_size=320");
  plan.set("ocr_lexicon=16");
  plan.set("ocr_min_text_height=0.45");
  plan.set("ocr_inverted=0");
  EXPECT_EQ(plan.answers, 12);
  EXPECT_DOUBLE_EQ(plan.warmup_share, 0.2);
  EXPECT_DOUBLE_EQ(plan.arm_lr.at("dpo"), 3e-5);
  EXPECT_EQ(plan.tasks, (std::vector<std::string>{"grounding", "ocr"}));
  EXPECT_FALSE(plan.ground_truth_in_list);
  EXPECT_EQ(plan.ocr_max_words, 1);
  EXPECT_EQ(plan.vocab_size, 320);
  EXPECT_EQ(plan.ocr_lexicon, 16);
  EXPECT_DOUBLE_EQ(plan.ocr_min_text_height, 0.45);
  EXPECT_DOUBLE_EQ(plan.ocr_inverted, 0.0);
  EXPECT_TRUE(described(plan, "ocr_lexicon", "16"));
  EXPECT_TRUE(described(plan, "ocr_min_text_height", "0.45"));
  EXPECT_TRUE(described(plan, "ocr_inverted", "0"));
  EXPECT_TRUE(described(plan, "answers", "12"));
  EXPECT_TRUE(described(plan, "warmup_share", "0.2"));
  EXPECT_TRUE(described(plan, "ocr_max_words", "1"));
  EXPECT_TRUE(described(plan, "vocab_size", "320"));
  EXPECT_TRUE(described(plan, "arm_lr.dpo", "3e-05"));
}

TEST(DemoPlan, TheFullPlansWarmupIs25StepsAndTheQuickPlansNone) {
  // The arms' warmup is pref_steps * warmup_share steps (pipeline_stages.cpp).
  const DemoPlan full = DemoPlan::full(), quick = DemoPlan::quick();
  EXPECT_EQ(static_cast<int>(full.pref_steps * full.warmup_share), 25);
  EXPECT_EQ(static_cast<int>(quick.pref_steps * quick.warmup_share), 0);
}

TEST(DemoPlan, BadSettingsAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"colour=red", "unknown demo setting 'colour'"},
      {"answers", "is not key=value"},
      {"answers=many", "'many' is not a number"},
      {"answers=2.5", "is not a whole number"},
      {"max_shapes=9", "'max_shapes' must be in [1, 8]"},
      {"ocr_max_words=0", "'ocr_max_words' must be in [1, 8]"},
      {"vocab_size=10", "'vocab_size' must be in [64, 32000]"},
      {"warmup_share=1.5", "'warmup_share' must be in [0, 1]"},
      {"ocr_lexicon=141", "'ocr_lexicon' must be in [0, 140]"},
      {"ocr_inverted=-1", "'ocr_inverted' must be in [0, 1]"},
      {"ocr_max_text_height=0.95", "'ocr_max_text_height' must be in [0.1, 0.9]"},
      {"tasks=vqa", "demo task 'vqa'"},
      {"arms=ppo", "demo arm 'ppo'"},
      {"ground_truth_in_list=yes", "must be true or false"},
      {"eval_split=train", "eval_split must be val or test"},
  };
  for (const auto& [assignment, phrase] : cases) {
    DemoPlan plan;
    const std::string message = test::error_of([&] { plan.set(assignment); });
    EXPECT_NE(message.find(phrase), std::string::npos) << assignment << ": " << message;
  }
}

}  // namespace
}  // namespace perpo
