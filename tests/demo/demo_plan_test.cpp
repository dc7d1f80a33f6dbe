// DemoPlan::set: `perpo demo --set key=value` parses numbers, lists and flags, checks the ranges
// of the settings that have one, and names what it refuses; describe() lists every setting.
// DemoSuite: one chain (model) per task; "key=value" reaches every chain, "ocr.key=value" one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>

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
  plan.set("reference=sampler");
  EXPECT_EQ(plan.answers, 12);
  EXPECT_EQ(plan.reference, "sampler");
  EXPECT_TRUE(described(plan, "reference", "sampler"));
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
      {"reference=frozen", "reference must be start or sampler"},
      // Every value is checked when it is set (issue 21: these failed only after stage 1 ran).
      {"arm_lr.ppo=1e-4", "'arm_lr.ppo': unknown arm 'ppo' (the arms are sft, dpo, perpo)"},
      {"arm_lr.dpo=-1e-5", "'arm_lr.dpo' must be a finite number > 0, got -1e-5"},
      {"answers=1", "'answers' must be a whole number >= 2, got 1"},
      {"answers=nan", "'answers': 'nan' is not a whole number"},
      {"answers=1e12", "'answers': '1e12' is not a whole number"},
      {"pref_steps=0", "'pref_steps' must be a whole number >= 1, got 0"},
      {"sft_batch=-4", "'sft_batch' must be a whole number >= 1, got -4"},
      {"curve_records=0", "'curve_records' must be a whole number >= 1"},
      {"temperature=-1", "'temperature' must be a finite number >= 0, got -1"},
      {"temperature=inf", "'temperature' must be a finite number >= 0, got inf"},
      {"sft_lr=nan", "'sft_lr' must be a finite number > 0, got nan"},
      {"sft_lr=0", "'sft_lr' must be a finite number > 0, got 0"},
      {"beta=0", "'beta' must be a finite number > 0"},
      {"gamma=-0.5", "'gamma' must be a finite number >= 0"},
      {"warmup_share=nan", "'warmup_share' must be in [0, 1], got nan"},
      {"arms=dpo,dpo", "'arms': 'dpo' is named twice"},
  };
  for (const auto& [assignment, phrase] : cases) {
    DemoPlan plan;
    const std::string message = test::error_of([&] { plan.set(assignment); });
    EXPECT_NE(message.find(phrase), std::string::npos) << assignment << ": " << message;
  }
}

TEST(DemoSuite, TheDefaultRunsAGroundingAndAnOcrChainEachWithItsOwnModelSettings) {
  const DemoSuite suite = DemoSuite::full();
  EXPECT_EQ(suite.tasks, (std::vector<std::string>{"grounding", "ocr"}));
  const DemoPlan& grounding = suite.plans.at("grounding");
  const DemoPlan& ocr = suite.plans.at("ocr");
  EXPECT_EQ(grounding.tasks, std::vector<std::string>{"grounding"});
  EXPECT_EQ(ocr.tasks, std::vector<std::string>{"ocr"});
  // The reduced OCR regime (docs/demo-study.md): one word of 16, large dark font, letters as
  // pieces, its own stage-1 lr and length.
  EXPECT_EQ(ocr.ocr_max_words, 1);
  EXPECT_EQ(ocr.ocr_lexicon, 16);
  EXPECT_DOUBLE_EQ(ocr.ocr_min_text_height, 0.45);
  EXPECT_DOUBLE_EQ(ocr.ocr_inverted, 0.0);
  EXPECT_EQ(ocr.vocab_size, 64);
  EXPECT_DOUBLE_EQ(ocr.sft_lr, 5e-4);
  EXPECT_DOUBLE_EQ(grounding.sft_lr, 2e-3);
  EXPECT_DOUBLE_EQ(grounding.temperature, 0.7);  // each chain's, chosen on val
  EXPECT_DOUBLE_EQ(ocr.temperature, 1.0);
  EXPECT_NE(ocr.sft_steps, grounding.sft_steps);
  // quick keeps each chain's stage 1 and shrinks stage 2.
  const DemoSuite quick = DemoSuite::quick();
  for (const auto& task : {"grounding", "ocr"}) {
    EXPECT_EQ(quick.plans.at(task).sft_steps, suite.plans.at(task).sft_steps) << task;
    EXPECT_DOUBLE_EQ(quick.plans.at(task).sft_lr, suite.plans.at(task).sft_lr) << task;
    EXPECT_EQ(quick.plans.at(task).tasks, suite.plans.at(task).tasks) << task;
    EXPECT_LT(quick.plans.at(task).pref_steps, suite.plans.at(task).pref_steps) << task;
  }
}

TEST(DemoSuite, SettingsReachEveryChainOrTheNamedOne) {
  DemoSuite suite;
  suite.set("pref_steps=100");
  suite.set("ocr.sft_lr=1e-3");
  suite.set("grounding.arm_lr.dpo=7e-5");
  EXPECT_EQ(suite.plans.at("grounding").pref_steps, 100);
  EXPECT_EQ(suite.plans.at("ocr").pref_steps, 100);
  EXPECT_DOUBLE_EQ(suite.plans.at("ocr").sft_lr, 1e-3);
  EXPECT_DOUBLE_EQ(suite.plans.at("grounding").sft_lr, 2e-3);
  EXPECT_DOUBLE_EQ(suite.plans.at("grounding").arm_lr.at("dpo"), 7e-5);
  EXPECT_NE(suite.plans.at("ocr").arm_lr.at("dpo"), 7e-5);
  suite.set("tasks=ocr");
  EXPECT_EQ(suite.tasks, std::vector<std::string>{"ocr"});
  EXPECT_EQ(suite.plans.at("ocr").tasks, std::vector<std::string>{"ocr"});  // the chain's own
}

TEST(DemoSuite, BadSettingsAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tasks=ocr,ocr", "demo task 'ocr' is named twice"},
      {"tasks=vqa", "demo task 'vqa' is not grounding or ocr"},
      {"tasks=", "demo setting 'tasks' is empty"},
      {"ocr.tasks=grounding", "a chain's task is its name"},
      {"ocr.sft_lr=fast", "'fast' is not a number"},
      {"vqa.sft_lr=1e-3", "unknown demo setting 'vqa.sft_lr'"},
      {"answers=many", "'many' is not a number"},
      // A chain's setting is named as the user typed it.
      {"ocr.answers=1", "demo setting 'ocr.answers' must be a whole number >= 2, got 1"},
      {"grounding.sft_lr=nan", "demo setting 'grounding.sft_lr' must be a finite number > 0"},
      {"ocr.arm_lr.ppo=1e-4", "demo setting 'ocr.arm_lr.ppo': unknown arm 'ppo'"},
  };
  for (const auto& [assignment, phrase] : cases) {
    DemoSuite suite;
    const std::string message = test::error_of([&] { suite.set(assignment); });
    EXPECT_NE(message.find(phrase), std::string::npos) << assignment << ": " << message;
  }
}

TEST(DemoPlan, CheckRefusesBadSettingsMadeInCode) {
  EXPECT_NO_THROW(DemoPlan::full("grounding").check());
  EXPECT_NO_THROW(DemoPlan::full("ocr").check());
  EXPECT_NO_THROW(DemoPlan::quick("grounding").check());
  EXPECT_NO_THROW(DemoPlan::quick("ocr").check());
  const std::vector<std::pair<std::function<void(DemoPlan&)>, std::string>> cases = {
      {[](DemoPlan& p) { p.answers = 1; }, "'answers' must be a whole number >= 2, got 1"},
      {[](DemoPlan& p) { p.temperature = -1; }, "'temperature' must be a finite number >= 0"},
      {[](DemoPlan& p) { p.sft_lr = NAN; }, "'sft_lr' must be a finite number > 0"},
      {[](DemoPlan& p) { p.arm_lr["ppo"] = 1e-4; }, "unknown arm 'ppo'"},
      {[](DemoPlan& p) { p.arm_lr.erase("dpo"); }, "no learning rate for arm 'dpo'"},
      {[](DemoPlan& p) { p.arms = {}; }, "'arms' is empty"},
      {[](DemoPlan& p) { p.ocr_lexicon = 1; }, "lexicon must be 0 (all words) or in [2, 140]"},
      {[](DemoPlan& p) {
         p.ocr_min_text_height = 0.5;
         p.ocr_max_text_height = 0.4;
       },
       "0.1 <= min <= max <= 0.9"},
  };
  for (const auto& [change, phrase] : cases) {
    DemoPlan plan;
    change(plan);
    const std::string message = test::error_of([&] { plan.check(); });
    EXPECT_NE(message.find(phrase), std::string::npos) << phrase << ": " << message;
  }
}

TEST(DemoSuite, ABadChainIsRefusedBeforeAnythingIsWritten) {
  // The grounding chain is fine, the OCR chain's plan is not: run_demo refuses it, naming the
  // chain, before it makes the output folder (the first stage would have run otherwise).
  const std::filesystem::path out = test::fresh_scratch_dir("demo", "bad-chain") / "out";
  DemoSuiteOptions options;
  options.out = out;
  options.suite = DemoSuite::quick();
  options.suite.plans.at("ocr").answers = 1;
  const std::string message = test::error_of([&] { run_demo(options); });
  EXPECT_NE(message.find("the ocr chain: demo setting 'answers' must be"), std::string::npos)
      << message;
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace perpo
