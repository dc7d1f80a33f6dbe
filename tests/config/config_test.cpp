#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "perpo/config/config_io.h"
#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "test_paths.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;

// Runs `fn`, expects a perpo::Error of input kind, returns its full text.
template <typename Fn>
std::string input_error_text(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no perpo::Error was thrown";
  return "";
}

fs::path write_temp(const std::string& name, const std::string& text) {
  fs::path path = fs::path(test::kScratchDir) / "config" / name;
  write_file_atomic(path, text);
  return path;
}

TEST(Config, DefaultsMatchTheAuthorsRelease) {
  Config c;
  EXPECT_EQ(c.loss.name, "perpo");
  EXPECT_DOUBLE_EQ(c.loss.beta, 0.1);
  EXPECT_DOUBLE_EQ(c.loss.gamma, 0.5);
  EXPECT_DOUBLE_EQ(c.optim.lr, 5e-6);
  EXPECT_EQ(c.optim.schedule, "cosine");
  EXPECT_DOUBLE_EQ(c.optim.max_grad_norm, 1.0);
  EXPECT_EQ(c.model.lora.r, 128);
  EXPECT_DOUBLE_EQ(c.model.lora.alpha, 256);
  EXPECT_NO_THROW(validate(c));
}

TEST(Config, LoadsYamlFileIncludingNestedSectionsAndLists) {
  auto path = write_temp("ok.yaml", R"(
model:
  lora:
    enabled: true
    r: 8
    targets: [q_proj, v_proj]
loss:
  name: dpo
  beta: 0.25
image:
  mean: [0.5, 0.5, 0.5]
run:
  seed: 7
)");
  Config c = load_config(path);
  EXPECT_TRUE(c.model.lora.enabled);
  EXPECT_EQ(c.model.lora.r, 8);
  EXPECT_EQ(c.model.lora.targets, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(c.loss.name, "dpo");
  EXPECT_DOUBLE_EQ(c.loss.beta, 0.25);
  EXPECT_EQ(c.image.mean, (std::vector<double>{0.5, 0.5, 0.5}));
  EXPECT_EQ(c.run.seed, 7u);
  EXPECT_DOUBLE_EQ(c.loss.gamma, 0.5);  // untouched keys keep their defaults
}

TEST(Config, OverridesApplyAfterTheFile) {
  auto path = write_temp("base.yaml", "optim:\n  lr: 1e-5\n");
  Config c = load_config(
      path, {"optim.lr=2e-4", "train.epochs=3", "model.lora.targets=o_proj", "run.dir=runs/x y"});
  EXPECT_DOUBLE_EQ(c.optim.lr, 2e-4);
  EXPECT_EQ(c.train.epochs, 3);
  EXPECT_EQ(c.model.lora.targets, (std::vector<std::string>{"o_proj"}));
  EXPECT_EQ(c.run.dir, "runs/x y");
}

// A run written by an earlier perpo holds the retired data.synthetic section in its config.yaml:
// it still loads (so --resume works), the section ignored.
TEST(Config, RetiredKeysOfOlderRunsAreIgnored) {
  auto path = write_temp("old_run.yaml",
                         "data:\n  train: lists.jsonl\n  synthetic:\n    tasks: [grounding, ocr]\n"
                         "    seed: 1\n");
  Config c = load_config(path);
  EXPECT_EQ(c.data.train, "lists.jsonl");
  Config d;
  EXPECT_THROW(apply_override(d, "data.synthetic.seed=2"), Error);  // not a key to set any more
}

TEST(Config, StringOverridesStayStrings) {
  Config c;
  apply_override(c, "run.dir=1e5");
  EXPECT_EQ(c.run.dir, "1e5");
  apply_override(c, "model.path=\"\"");
  EXPECT_EQ(c.model.path, "");
}

TEST(Config, UnknownKeySuggestsTheNearestValidOne) {
  Config c;
  std::string text = input_error_text([&] { apply_override(c, "optim.lrr=1"); });
  EXPECT_NE(text.find("unknown key 'optim.lrr'"), std::string::npos) << text;
  EXPECT_NE(text.find("did you mean 'optim.lr'?"), std::string::npos) << text;

  // A known leaf under the wrong section is found too.
  text = input_error_text([&] { apply_override(c, "train.lr=1"); });
  EXPECT_NE(text.find("did you mean 'optim.lr'?"), std::string::npos) << text;

  auto path = write_temp("typo.yaml", "loss:\n  beta: 0.1\n  gama: 0.5\n");
  text = input_error_text([&] { load_config(path); });
  EXPECT_NE(text.find("typo.yaml:3"), std::string::npos) << text;  // names file and line
  EXPECT_NE(text.find("unknown key 'loss.gama'"), std::string::npos) << text;
  EXPECT_NE(text.find("did you mean 'loss.gamma'?"), std::string::npos) << text;

  path = write_temp("section.yaml", "trian:\n  epochs: 1\n");
  text = input_error_text([&] { load_config(path); });
  EXPECT_NE(text.find("did you mean 'train'?"), std::string::npos) << text;
}

TEST(Config, WrongTypesAreErrorsNamingKeyAndExpectedType) {
  Config c;
  std::string text = input_error_text([&] { apply_override(c, "loss.beta=abc"); });
  EXPECT_NE(text.find("'loss.beta' must be a number, got 'abc'"), std::string::npos) << text;
  text = input_error_text([&] { apply_override(c, "train.epochs=1.5"); });
  EXPECT_NE(text.find("'train.epochs' must be an integer"), std::string::npos) << text;
  text = input_error_text([&] { apply_override(c, "model.lora.enabled=maybe"); });
  EXPECT_NE(text.find("must be true or false"), std::string::npos) << text;
  text = input_error_text([&] { apply_override(c, "image.mean=0.5"); });
  EXPECT_NE(text.find("must be a list of numbers"), std::string::npos) << text;
  text = input_error_text([&] { apply_override(c, "loss.name=dop"); });
  EXPECT_NE(text.find("must be one of perpo, dpo"), std::string::npos) << text;
  EXPECT_NE(text.find("did you mean 'dpo'?"), std::string::npos) << text;
  text = input_error_text([&] { apply_override(c, "run.seed=-1"); });
  EXPECT_NE(text.find("non-negative integer"), std::string::npos) << text;
  text = input_error_text([&] { apply_override(c, "loss=1"); });
  EXPECT_NE(text.find("is a section"), std::string::npos) << text;
  text = input_error_text([&] { apply_override(c, "no-equals-sign"); });
  EXPECT_NE(text.find("key=value"), std::string::npos) << text;

  auto path = write_temp("types.yaml", "train:\n  epochs: [1, 2]\n");
  text = input_error_text([&] { load_config(path); });
  EXPECT_NE(text.find("types.yaml:2"), std::string::npos) << text;
  EXPECT_NE(text.find("got a list"), std::string::npos) << text;
}

TEST(Config, BadYamlAndNonMappingFilesAreInputErrors) {
  auto path = write_temp("broken.yaml", "loss: [unclosed\n");
  std::string text = input_error_text([&] { load_config(path); });
  EXPECT_NE(text.find("not valid YAML"), std::string::npos) << text;
  path = write_temp("list.yaml", "- a\n- b\n");
  text = input_error_text([&] { load_config(path); });
  EXPECT_NE(text.find("must be a mapping"), std::string::npos) << text;
  path = write_temp("scalar-section.yaml", "loss: 3\n");
  text = input_error_text([&] { load_config(path); });
  EXPECT_NE(text.find("'loss' is a section"), std::string::npos) << text;
}

TEST(Config, DuplicateKeysAreErrorsNamingBothLines) {
  auto path = write_temp("duplicate.yaml", "optim:\n  lr: 1.0e-5\n\n  lr: 2.0e-5\n");
  std::string text = input_error_text([&] { load_config(path); });
  EXPECT_NE(text.find("duplicate.yaml:4: duplicate key 'optim.lr' (first set on line 2)"),
            std::string::npos)
      << text;
  // A duplicated section too.
  path = write_temp("duplicate-section.yaml",
                    "loss:\n  beta: 0.1\noptim:\n  lr: 1.0\nloss:\n  beta: 0.2\n");
  text = input_error_text([&] { load_config(path); });
  EXPECT_NE(text.find("duplicate-section.yaml:5: duplicate key 'loss'"), std::string::npos) << text;
}

TEST(Config, ASecondDocumentIsAnErrorNamingItsLine) {
  auto path = write_temp("two-docs.yaml", "loss:\n  beta: 0.1\n---\nloss:\n  beta: 0.2\n");
  std::string text = input_error_text([&] { load_config(path); });
  EXPECT_NE(text.find("two-docs.yaml:3: a second YAML document"), std::string::npos) << text;
  // A leading "---" starts the first (and only) document: fine.
  path = write_temp("one-doc.yaml", "# comment\n---\nloss:\n  beta: 0.25\n");
  EXPECT_DOUBLE_EQ(load_config(path).loss.beta, 0.25);
  path = write_temp("two-markers.yaml", "---\nloss:\n  beta: 0.1\n--- # again\n");
  text = input_error_text([&] { load_config(path); });
  EXPECT_NE(text.find("two-markers.yaml:4: a second YAML document"), std::string::npos) << text;
}

TEST(Config, ValidationNamesKeyAndHowToFixIt) {
  struct Case {
    std::string override_text;
    std::string expected;
  };
  std::vector<Case> cases = {
      {"sampling.num_answers=1", "'sampling.num_answers' must be in [2, 4096]"},
      {"loss.beta=0", "'loss.beta' must be in (0, 1000]"},
      {"optim.lr=-1", "'optim.lr' must be in (0, 10]"},
      // Non-finite and absurd numbers (issue 21: they ran to exit 0 with NaN checkpoints).
      {"optim.weight_decay=inf", "'optim.weight_decay' must be in [0, 10]; got inf"},
      {"optim.weight_decay=1e308", "'optim.weight_decay' must be in [0, 10]"},
      {"optim.lr=1e308", "'optim.lr' must be in (0, 10]"},
      {"loss.beta=1e308", "'loss.beta' must be in (0, 1000]"},
      {"model.lora.alpha=inf", "'model.lora.alpha' must be in (0, 1000000]"},
      {"image.mean=[nan, 0.5, 0.5]", "'image.mean' must be in [0, 1]; got nan"},
      {"image.std=[1e-320, 0.3, 0.3]", "'image.std' must be in [0.001, 10]"},
      {"model.lora.r=1000000000", "'model.lora.r' must be in [1, 65536]"},
      {"sampling.num_answers=1000000000", "'sampling.num_answers' must be in [2, 4096]"},
      {"run.threads=100000", "'run.threads' must be in [0, 1024]"},
      {"sampling.temperature=-1", "'sampling.temperature' must be in [0, 100]"},
      {"optim.beta2=1", "'optim.beta2' must be in [0, 1)"},
      {"sampling.top_p=1.5", "'sampling.top_p' must be in (0, 1]"},
      {"model.tiny.kv_heads=3", "must be divisible by model.tiny.kv_heads"},
      {"run.device=gpu", "'run.device' must be cpu, cuda or cuda:N"},
      {"run.dtype=fp16", "fp16 is only supported on CUDA"},
      {"distributed.backend=nccl", "nccl needs run.device=cuda"},
      {"reward.name=iuo", "did you mean 'iou'?"},
      {"image.std=[0.2, 0.2]", "'image.std' must hold 3 values"},
  };
  for (const auto& test_case : cases) {
    Config c;
    apply_override(c, test_case.override_text);
    std::string text = input_error_text([&] { validate(c); });
    EXPECT_NE(text.find(test_case.expected), std::string::npos)
        << test_case.override_text << " -> " << text;
    EXPECT_NE(text.find("hint:"), std::string::npos) << text;
  }
  // Two keys together: a system prompt that the plain template would silently drop.
  Config plain;
  apply_override(plain, "tokenizer.chat_template=plain");
  apply_override(plain, "tokenizer.system_prompt=Be brief.");
  EXPECT_NE(input_error_text([&] {
              validate(plain);
            }).find("'tokenizer.system_prompt' is set but the plain template has no system prompt"),
            std::string::npos);
  apply_override(plain, "tokenizer.chat_template=vicuna_v1");
  EXPECT_NO_THROW(validate(plain));
}

TEST(Config, DumpRoundTripsExactly) {
  Config c;
  for (const char* o :
       {"optim.lr=3.3e-7", "loss.gamma=0.3333333333333333", "model.path=/x/\"q\" y",
        "model.lora.targets=[q_proj, 'k: proj']", "image.mean=[0.1, 0.2, 0.30000000000000004]",
        "run.seed=18446744073709551615", "eval.iou_threshold=1", "train.max_steps=12"}) {
    apply_override(c, o);
  }
  std::string yaml = dump_config(c);
  Config back;
  merge_yaml(back, yaml, "dump");
  EXPECT_TRUE(configs_equal(c, back)) << yaml;
  EXPECT_EQ(dump_config(back), yaml);
  EXPECT_EQ(back.model.path, "/x/\"q\" y");
  EXPECT_EQ(back.run.seed, 18446744073709551615ull);
  EXPECT_FALSE(configs_equal(c, Config{}));
  // Every key appears in the full dump with a comment; a run's dump leaves out the demo: section
  // while it is at its defaults (and round-trips all the same).
  const std::string every = dump_config(c, /*every_section=*/true);
  for (const auto& key : config_keys()) {
    std::string leaf = key.substr(key.rfind('.') + 1);
    EXPECT_NE(every.find(leaf + ": "), std::string::npos) << key;
  }
  EXPECT_EQ(yaml.find("\ndemo:"), std::string::npos);
  EXPECT_NE(every.find("\ndemo:"), std::string::npos);
  Config from_every;
  merge_yaml(from_every, every, "dump");
  EXPECT_TRUE(configs_equal(c, from_every));
  c.demo.answers = 7;
  EXPECT_NE(dump_config(c).find("\ndemo:"), std::string::npos);  // not at its defaults: kept
}

TEST(Config, ShippedConfigsLoadAndValidate) {
  fs::path configs = fs::path(test::kTestsDir).parent_path() / "configs";
  int count = 0;
  for (const auto& entry : fs::recursive_directory_iterator(configs)) {
    if (entry.path().extension() != ".yaml") continue;
    EXPECT_NO_THROW(load_config(entry.path())) << entry.path();
    ++count;
  }
  EXPECT_GE(count, 6);  // the two 7B recipes and configs/demo/'s four
  Config grounding = load_config(configs / "llava-1.5-7b-grounding.yaml");
  EXPECT_EQ(grounding.sampling.num_answers, 20);
  EXPECT_TRUE(grounding.model.lora.enabled);
  EXPECT_EQ(grounding.run.dtype, "bf16");
  // The same recipe on Qwen2.5-VL: the family comes from the checkpoint, the template from its
  // tokenizer; vision tower and merger frozen, LoRA, bf16.
  Config qwen = load_config(configs / "qwen2.5-vl-7b-grounding.yaml");
  EXPECT_EQ(qwen.tokenizer.chat_template, "auto");
  EXPECT_TRUE(qwen.model.lora.enabled);
  EXPECT_TRUE(qwen.model.freeze_vision);
  EXPECT_EQ(qwen.run.dtype, "bf16");
  EXPECT_EQ(qwen.sampling.num_answers, grounding.sampling.num_answers);
  EXPECT_EQ(qwen.optim.lr, grounding.optim.lr);
  EXPECT_EQ(qwen.image.max_pixels, 1003520);
}

}  // namespace
}  // namespace perpo

namespace perpo {
namespace {

TEST(Config, EveryNumericKeyHasARowInTheRangeTable) {
  // The numeric-settings table is the one place that bounds numbers: a new numeric key without
  // a row would make validate() fail on the defaults, and a row for a removed key is dead.
  std::set<std::string> rows;
  for (const NumberRange& range : number_ranges()) {
    EXPECT_TRUE(rows.insert(range.key).second) << "row twice: " << range.key;
    EXPECT_LT(range.min, range.max) << range.key;
    EXPECT_TRUE(std::isfinite(range.min) && std::isfinite(range.max)) << range.key;
  }
  std::set<std::string> keys;
  for (const NumericField& field : numeric_fields(Config{})) {
    keys.insert(field.key);
    EXPECT_TRUE(rows.count(field.key)) << field.key << " has no row in the numeric table";
  }
  for (const std::string& row : rows) EXPECT_TRUE(keys.count(row)) << "dead row " << row;
  EXPECT_NO_THROW(validate(Config{}));  // every default lies in its range
  // Every number read from YAML is bounded: each key refuses inf, -inf and nan.
  for (const std::string& key : keys) {
    for (const char* bad : {"inf", "-inf", "nan"}) {
      Config c;
      const bool list = key == "image.mean" || key == "image.std";
      try {
        apply_override(c, key + "=" + (list ? "[" + std::string(bad) + ", 0.3, 0.3]" : bad));
      } catch (const Error&) {
        continue;  // an integer key refuses the text itself
      }
      EXPECT_THROW(validate(c), Error) << key << "=" << bad;
    }
  }
}

}  // namespace
}  // namespace perpo
