// The demo's chains are ordinary configs: configs/demo/base.yaml <- <task>.yaml (<- quick.yaml),
// compiled in, whose demo: section is the plan. `perpo demo --set key=value` is a config
// override of every chain ("ocr.key=value": one chain's; demo keys without "demo."), validated
// by the config's own checks and named as typed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>

#include "perpo/config/config_io.h"
#include "perpo/core/input_file.h"
#include "perpo/demo/pipeline.h"
#include "perpo/demo/pipeline_stages.h"
#include "test_paths.h"
#include "test_util.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;

Config chain_from_files(const std::vector<std::string>& names) {
  const fs::path dir = fs::path(test::kTestsDir).parent_path() / "configs" / "demo";
  Config config;
  for (const auto& name : names) {
    const fs::path file = dir / (name + ".yaml");
    merge_yaml(config, read_input_file(file), file.string());
  }
  return config;
}

bool described(const Config& chain, const std::string& key, const std::string& value) {
  const auto lines = demo_settings(chain);
  return std::find(lines.begin(), lines.end(), std::make_pair(key, value)) != lines.end();
}

TEST(DemoChains, TheBuiltInChainsAreTheFilesUnderConfigsDemo) {
  // What perpo demo runs is what configs/demo/ says (the compiled-in copy is not stale).
  for (const std::string task : {"grounding", "ocr"}) {
    EXPECT_TRUE(configs_equal(demo_chain_config(task), chain_from_files({"base", task}))) << task;
    EXPECT_TRUE(
        configs_equal(demo_chain_config(task, true), chain_from_files({"base", task, "quick"})))
        << task;
  }
  // And the grounding file states the member defaults (the plan a bare config holds).
  Config grounding = chain_from_files({"grounding"});
  EXPECT_TRUE(configs_equal(grounding, Config{}));
  // A chain config is a full perpo config: config show lists its plan; the configs of the
  // stages (demo_base_config) carry none, so their dumps are those of plain commands.
  const std::string shown = dump_config(demo_chain_config("ocr"), /*every_section=*/true);
  EXPECT_NE(shown.find("  ocr_lexicon: 16"), std::string::npos);
  DemoOptions options;
  options.config = demo_chain_config("ocr");
  const std::string stage = dump_config(demo_base_config(options));
  EXPECT_EQ(stage.find("demo:"), std::string::npos);
  EXPECT_EQ(dump_config(Config{}).find("demo:"), std::string::npos);
  EXPECT_NE(dump_config(options.config).find("demo:"), std::string::npos);  // not at defaults
}

TEST(DemoSuite, SetParsesEachKindOfSetting) {
  DemoSuite suite;
  suite.set("answers=12");
  suite.set("warmup_share=0.2");
  suite.set("arm_lr.dpo=3e-5");
  suite.set("ground_truth_in_list=false");
  suite.set("ocr_max_words=1");
  suite.set("demo.vocab_size=320");
  suite.set("ocr_lexicon=16");
  suite.set("ocr_min_text_height=0.45");  // above the grounding chain's max until the next line
  suite.set("ocr_max_text_height=0.55");
  suite.set("ocr_inverted=0");
  suite.set("reference=sampler");
  suite.set("arms=dpo,perpo");
  suite.set("run.threads=2");  // any config key of the chains
  for (const auto& [task, chain] : suite.chains) {
    const DemoPlan& plan = chain.demo;
    EXPECT_EQ(plan.answers, 12) << task;
    EXPECT_EQ(plan.reference, "sampler");
    EXPECT_DOUBLE_EQ(plan.warmup_share, 0.2);
    EXPECT_DOUBLE_EQ(plan.arm_lr.dpo, 3e-5);
    EXPECT_FALSE(plan.ground_truth_in_list);
    EXPECT_EQ(plan.ocr_max_words, 1);
    EXPECT_EQ(plan.vocab_size, 320);
    EXPECT_EQ(plan.ocr_lexicon, 16);
    EXPECT_DOUBLE_EQ(plan.ocr_min_text_height, 0.45);
    EXPECT_DOUBLE_EQ(plan.ocr_inverted, 0.0);
    EXPECT_EQ(plan.arms, (std::vector<std::string>{"dpo", "perpo"}));
    EXPECT_NO_THROW(validate(chain)) << task;
    EXPECT_EQ(chain.run.threads, 2);
    EXPECT_TRUE(described(chain, "reference", "sampler"));
    EXPECT_TRUE(described(chain, "answers", "12"));
    EXPECT_TRUE(described(chain, "arm_lr.dpo", "3e-05"));
    EXPECT_TRUE(described(chain, "arms", "[dpo, perpo]"));
  }
}

TEST(DemoChains, TheFullPlansWarmupIs25StepsAndTheQuickPlansNone) {
  // The arms' warmup is pref_steps * warmup_share steps (pipeline_stages.cpp).
  for (const std::string task : {"grounding", "ocr"}) {
    const DemoPlan full = demo_chain_config(task).demo;
    const DemoPlan quick = demo_chain_config(task, true).demo;
    EXPECT_EQ(static_cast<int>(full.pref_steps * full.warmup_share), 25) << task;
    EXPECT_EQ(static_cast<int>(quick.pref_steps * quick.warmup_share), 0) << task;
  }
}

TEST(DemoSuite, BadSettingsAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"colour=red", "unknown key 'colour'"},
      {"answers", "is not key=value"},
      {"answers=many", "--set answers=many: key 'demo.answers' must be an integer, got 'many'"},
      {"answers=2.5", "key 'demo.answers' must be an integer"},
      {"max_shapes=9", "key 'demo.max_shapes' must be in [1, 8]; got 9"},
      {"ocr_max_words=0", "key 'demo.ocr_max_words' must be in [1, 8]"},
      {"vocab_size=10", "key 'demo.vocab_size' must be in [64, 32000]"},
      {"warmup_share=1.5", "key 'demo.warmup_share' must be in [0, 1]"},
      {"ocr_lexicon=141", "key 'demo.ocr_lexicon' must be in [0, 140]"},
      {"ocr_lexicon=1", "key 'demo.ocr_lexicon' must be 0 (all words) or at least 2"},
      {"ocr_inverted=-1", "key 'demo.ocr_inverted' must be in [0, 1]"},
      {"ocr_max_text_height=0.95", "key 'demo.ocr_max_text_height' must be in [0.1, 0.9]"},
      {"ocr_min_text_height=0.8", "must be at most demo.ocr_max_text_height"},
      {"tasks=vqa", "demo task 'vqa' is not grounding or ocr"},
      {"tasks=ocr,ocr", "demo task 'ocr' is named twice"},
      {"tasks=", "demo setting 'tasks' is empty"},
      {"arms=ppo", "key 'demo.arms': 'ppo' is not sft or dpo or perpo"},
      {"arms=dpo,dpo", "key 'demo.arms' names it twice"},
      {"arms=", "key 'demo.arms' must name at least one"},
      {"ground_truth_in_list=maybe", "key 'demo.ground_truth_in_list' must be true or false"},
      {"eval_split=train", "key 'demo.eval_split' must be one of val, test; got 'train'"},
      {"reference=frozen", "key 'demo.reference' must be one of start, sampler"},
      {"arm_lr.ppo=1e-4", "unknown key 'arm_lr.ppo'"},
      {"arm_lr.dpo=-1e-5", "key 'demo.arm_lr.dpo' must be in (0, 10]; got -1e-05"},
      {"answers=1", "key 'demo.answers' must be in [2, 4096]; got 1"},
      {"answers=nan", "key 'demo.answers' must be an integer"},
      {"pref_steps=0", "key 'demo.pref_steps' must be in [1, "},
      {"curve_records=0", "key 'demo.curve_records' must be in [1, "},
      {"temperature=-1", "key 'demo.temperature' must be in [0, 100]; got -1"},
      {"temperature=inf", "key 'demo.temperature' must be in [0, 100]; got inf"},
      {"sft_lr=nan", "key 'demo.sft_lr' must be in (0, 10]; got nan"},
      {"beta=0", "key 'demo.beta' must be in (0, 1000]"},
      {"gamma=-0.5", "key 'demo.gamma' must be in [0, 100]"},
      {"ocr.tasks=grounding", "a chain's task is its name"},
      {"ocr.sft_lr=fast", "--set ocr.sft_lr=fast: key 'demo.sft_lr' must be a number"},
      {"vqa.sft_lr=1e-3", "unknown key 'vqa.sft_lr'"},
      // A chain's setting is named as the user typed it.
      {"ocr.answers=1", "key 'demo.answers' must be in [2, 4096]; got 1"},
      {"grounding.sft_lr=nan", "key 'demo.sft_lr' must be in (0, 10]"},
      {"ocr.answers=two", "--set ocr.answers=two: key 'demo.answers' must be an integer"},
      {"optim.lr=1e308", "key 'optim.lr' must be in (0, 10]"},
  };
  for (const auto& [assignment, phrase] : cases) {
    DemoSuite suite;
    const std::string message = test::error_of([&] {
      suite.set(assignment);
      for (const auto& [task, chain] : suite.chains) validate(chain);  // as run_demo does first
    });
    EXPECT_NE(message.find(phrase), std::string::npos) << assignment << ": " << message;
  }
}

TEST(DemoSuite, TheDefaultRunsAGroundingAndAnOcrChainEachWithItsOwnModelSettings) {
  const DemoSuite suite = DemoSuite::full();
  EXPECT_EQ(suite.tasks, (std::vector<std::string>{"grounding", "ocr"}));
  const DemoPlan& grounding = suite.chains.at("grounding").demo;
  const DemoPlan& ocr = suite.chains.at("ocr").demo;
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
  EXPECT_EQ(ocr.answers, 5);
  EXPECT_DOUBLE_EQ(ocr.arm_lr.dpo, 2.5e-5);
  EXPECT_NE(ocr.sft_steps, grounding.sft_steps);
  // Both chains train the same tiny model on 48-pixel images, one thread.
  for (const auto& [task, chain] : suite.chains) {
    EXPECT_EQ(chain.model.tiny.image_size, 48) << task;
    EXPECT_EQ(chain.image.size, 48) << task;
    EXPECT_EQ(chain.tokenizer.chat_template, "plain") << task;
    EXPECT_EQ(chain.run.threads, 1) << task;
  }
  // quick keeps each chain's stage 1 and shrinks stage 2.
  const DemoSuite quick = DemoSuite::quick();
  for (const auto& task : {"grounding", "ocr"}) {
    const DemoPlan& q = quick.chains.at(task).demo;
    const DemoPlan& f = suite.chains.at(task).demo;
    EXPECT_EQ(q.sft_steps, f.sft_steps) << task;
    EXPECT_DOUBLE_EQ(q.sft_lr, f.sft_lr) << task;
    EXPECT_EQ(q.tasks, f.tasks) << task;
    EXPECT_LT(q.pref_steps, f.pref_steps) << task;
  }
}

TEST(DemoSuite, SettingsReachEveryChainOrTheNamedOne) {
  DemoSuite suite;
  suite.set("pref_steps=100");
  suite.set("ocr.sft_lr=1e-3");
  suite.set("grounding.arm_lr.dpo=7e-5");
  EXPECT_EQ(suite.chains.at("grounding").demo.pref_steps, 100);
  EXPECT_EQ(suite.chains.at("ocr").demo.pref_steps, 100);
  EXPECT_DOUBLE_EQ(suite.chains.at("ocr").demo.sft_lr, 1e-3);
  EXPECT_DOUBLE_EQ(suite.chains.at("grounding").demo.sft_lr, 2e-3);
  EXPECT_DOUBLE_EQ(suite.chains.at("grounding").demo.arm_lr.dpo, 7e-5);
  EXPECT_NE(suite.chains.at("ocr").demo.arm_lr.dpo, 7e-5);
  suite.set("tasks=ocr");
  EXPECT_EQ(suite.tasks, std::vector<std::string>{"ocr"});
  EXPECT_EQ(suite.chains.at("ocr").demo.tasks, std::vector<std::string>{"ocr"});  // its own
}

TEST(DemoChains, CheckRefusesBadSettingsMadeInCode) {
  for (const std::string task : {"grounding", "ocr"}) {
    for (bool quick : {false, true}) {
      DemoOptions options;
      options.config = demo_chain_config(task, quick);
      EXPECT_NO_THROW(check_demo_chain(options)) << task;
    }
  }
  const std::vector<std::pair<std::function<void(DemoPlan&)>, std::string>> cases = {
      {[](DemoPlan& p) { p.answers = 1; }, "key 'demo.answers' must be in [2, 4096]; got 1"},
      {[](DemoPlan& p) { p.temperature = -1; }, "key 'demo.temperature' must be in [0, 100]"},
      {[](DemoPlan& p) { p.sft_lr = NAN; }, "key 'demo.sft_lr' must be in (0, 10]"},
      {[](DemoPlan& p) { p.arms = {}; }, "key 'demo.arms' must name at least one"},
      {[](DemoPlan& p) { p.arms = {"ppo"}; }, "'ppo' is not sft or dpo or perpo"},
      {[](DemoPlan& p) { p.ocr_lexicon = 1; }, "must be 0 (all words) or at least 2"},
      {[](DemoPlan& p) { p.reference = "frozen"; }, "key 'demo.reference'"},
      {[](DemoPlan& p) {
         p.ocr_min_text_height = 0.5;
         p.ocr_max_text_height = 0.4;
       },
       "must be at most demo.ocr_max_text_height"},
  };
  for (const auto& [change, phrase] : cases) {
    DemoOptions options;
    change(options.config.demo);
    const std::string message = test::error_of([&] { check_demo_chain(options); });
    EXPECT_NE(message.find(phrase), std::string::npos) << phrase << ": " << message;
  }
}

TEST(DemoSuite, ABadChainIsRefusedBeforeAnythingIsWritten) {
  // The grounding chain is fine, the OCR chain's plan is not: run_demo refuses it, naming the
  // chain, before it makes the output folder (the first stage would have run otherwise).
  const fs::path out = test::fresh_scratch_dir("demo", "bad-chain") / "out";
  DemoSuiteOptions options;
  options.out = out;
  options.suite = DemoSuite::quick();
  options.suite.chains.at("ocr").demo.answers = 1;
  const std::string message = test::error_of([&] { run_demo(options); });
  EXPECT_NE(message.find("the ocr chain: key 'demo.answers' must be"), std::string::npos)
      << message;
  EXPECT_FALSE(fs::exists(out));
}

TEST(DemoStages, TheGraphWaitsForEachStagesInputsAndRanksTheLongestWorkFirst) {
  // The full demo's two chains: sft -> sample -> 4 arms -> eval each, 14 model stages.
  const DemoSuite suite = DemoSuite::full();
  std::vector<DemoOptions> chains;
  for (const auto& task : suite.tasks) {
    chains.push_back({fs::path("out") / task, 1, false, suite.chains.at(task)});
  }
  const std::vector<DemoStageNode> nodes = demo_stage_graph(chains);
  ASSERT_EQ(nodes.size(), 14u);
  auto index = [&](const std::string& task, const std::string& stage) {
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].task == task && nodes[i].stage == stage) return i;
    }
    ADD_FAILURE() << task << "/" << stage << " missing";
    return nodes.size();
  };
  for (const std::string task : {"grounding", "ocr"}) {
    SCOPED_TRACE(task);
    const std::size_t sft = index(task, "sft"), sample = index(task, "sample");
    EXPECT_TRUE(nodes[sft].after.empty());
    EXPECT_EQ(nodes[sample].after, std::vector<std::size_t>{sft});
    std::vector<std::size_t> arms;
    for (const std::string arm : {"sft", "dpo", "perpo", "grpo"}) {
      const std::size_t i = index(task, "arm-" + arm);
      EXPECT_EQ(nodes[i].after, std::vector<std::size_t>{sample}) << arm;
      arms.push_back(i);
    }
    const std::size_t eval = index(task, "eval");
    EXPECT_EQ(nodes[eval].after, arms);
    // A stage's rank is its cost plus the longest rank that waits for it.
    EXPECT_DOUBLE_EQ(nodes[eval].rank, nodes[eval].cost);
    EXPECT_DOUBLE_EQ(nodes[sample].rank, nodes[sample].cost + nodes[index(task, "arm-dpo")].rank);
    EXPECT_DOUBLE_EQ(nodes[sft].rank, nodes[sft].cost + nodes[sample].rank);
    // The list arms (N answers per prompt) outrank the SFT arm, and all cost something.
    EXPECT_GT(nodes[index(task, "arm-perpo")].rank, nodes[index(task, "arm-sft")].rank);
    for (const auto& node : nodes) EXPECT_GT(node.cost, 0.0) << node.task << "/" << node.stage;
  }
  // Grounding's stage 2 (N = 20) is the longest chain of work in the full demo: its stage 1 goes
  // first (measured alone: 176 + 31 + 191 + 14 s against OCR's 214 + 6 + 78 + 9 s).
  EXPECT_GT(nodes[index("grounding", "sft")].rank, nodes[index("ocr", "sft")].rank);
  EXPECT_GT(nodes[index("grounding", "arm-dpo")].rank, nodes[index("ocr", "arm-dpo")].rank);
}

TEST(DemoStages, JobsDefaultToTheCoresOverEachStagesThreads) {
  DemoSuiteOptions options;
  options.jobs = 3;
  EXPECT_EQ(demo_jobs(options), 3);
  options.jobs = 0;
  const int one_thread = demo_jobs(options);  // the demo's chains run one thread per stage
  EXPECT_GE(one_thread, 1);
  EXPECT_LE(one_thread, 8);
  for (auto& [task, chain] : options.suite.chains) chain.run.threads = 0;  // every core each
  EXPECT_EQ(demo_jobs(options), 1);
  options.jobs = -1;
  const std::string message = test::error_of([&] { run_demo(options); });
  EXPECT_NE(message.find("--jobs -1 is negative"), std::string::npos) << message;
}

}  // namespace
}  // namespace perpo
