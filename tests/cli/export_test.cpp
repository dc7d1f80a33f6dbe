// perpo export end to end: a transformers fixture exported in the other key layout by the perpo
// executable reloads (C++ loader) with the logits transformers computed; bad paths exit 2.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "perpo/model/checkpoint.h"
#include "perpo/model/llava.h"
#include "perpo/model/model_config.h"
#include "perpo/model/safetensors.h"
#include "run_perpo.h"
#include "test_paths.h"

namespace {
namespace fs = std::filesystem;
using perpo::test::PerpoRun;
using perpo::test::run_perpo;

fs::path fixture_dir(const std::string& name) {
  return fs::path(perpo::test::kTestsDir) / "fixtures" / "model" / name;
}

struct ExportCase {
  std::string fixture;
  std::string layout;  // the fixture's own layout is the other one
};

class CliExport : public ::testing::TestWithParam<ExportCase> {};

TEST_P(CliExport, OtherLayoutReloadsWithTransformersLogits) {
  const ExportCase& c = GetParam();
  fs::path out = fs::path(perpo::test::kScratchDir) / "cli_export" / c.fixture;
  fs::remove_all(out);
  PerpoRun r = run_perpo("export --checkpoint " + fixture_dir(c.fixture).string() + " --output " +
                         out.string() + " --layout " + c.layout);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("-> " + c.layout), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tensors: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("wrote " + out.string()), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(out / "config.json"));
  EXPECT_TRUE(fs::exists(out / "model.safetensors"));

  perpo::ModelConfig config = perpo::load_model_config(out);
  perpo::LlavaModel model(config);
  perpo::load_weights(*model, out, &config);  // strict: every tensor lands in a parameter
  model->eval();
  EXPECT_EQ(config.key_layout, c.layout);

  perpo::SafetensorsFile inputs(fixture_dir(c.fixture) / "inputs.safetensors");
  torch::NoGradGuard no_grad;
  torch::Tensor logits =
      model->forward(inputs.tensor("input_ids"), inputs.tensor("pixel_values"));  // (B, S, V)
  torch::Tensor expected = inputs.tensor("logits");                               // (B, S, V)
  ASSERT_EQ(logits.sizes(), expected.sizes());
  ASSERT_GT(expected.std().item<double>(), 0.5);  // spread out: a wrong weight would show
  EXPECT_LT((logits - expected).abs().max().item<double>(), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CliExport,
                         ::testing::Values(ExportCase{"tiny_old_untied_gqa", "new"},
                                           ExportCase{"tiny_new_tied", "old"}),
                         [](const auto& info) { return info.param.fixture; });

TEST(CliExportFiles, TokenizerFilesBesideTheWeightsAreCopied) {
  fs::path source = fs::path(perpo::test::kScratchDir) / "cli_export" / "with_tokenizer";
  fs::path out = fs::path(perpo::test::kScratchDir) / "cli_export" / "with_tokenizer_out";
  fs::remove_all(source);
  fs::remove_all(out);  // a folder left by an older build holds no marker and would be refused
  fs::create_directories(source);
  for (const char* name : {"config.json", "model.safetensors"}) {
    fs::copy_file(fixture_dir("tiny_new_tied") / name, source / name);
  }
  const std::string tokenizer_config = "{\"model_max_length\": 4096}\n";
  {
    std::ofstream(source / "tokenizer_config.json") << tokenizer_config;
    std::ofstream(source / "notes.txt") << "not a tokenizer file\n";
  }
  PerpoRun r = run_perpo("export --checkpoint " + source.string() + " --output " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("tokenizer files copied: 1"), std::string::npos) << r.output;
  std::ifstream copied(out / "tokenizer_config.json");
  std::string text((std::istreambuf_iterator<char>(copied)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, tokenizer_config);
  EXPECT_FALSE(fs::exists(out / "notes.txt"));
}

TEST(CliExportErrors, MissingCheckpointExitsTwoNamingIt) {
  fs::path out = fs::path(perpo::test::kScratchDir) / "cli_export" / "never_written";
  PerpoRun r = run_perpo("export --checkpoint /no/such/llava --output " + out.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("perpo: error: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/no/such/llava"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
}

TEST(CliExportErrors, OutputOntoItsInputIsRefused) {
  std::string dir = fixture_dir("tiny_new_tied").string();
  PerpoRun r = run_perpo("export --checkpoint " + dir + " --output " + dir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("is the input"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(fs::path(dir) / "inputs.safetensors"));
}

TEST(CliExportErrors, UnknownLayoutExitsTwo) {
  fs::path out = fs::path(perpo::test::kScratchDir) / "cli_export" / "bad_layout";
  PerpoRun r = run_perpo("export --checkpoint " + fixture_dir("tiny_new_tied").string() +
                         " --output " + out.string() + " --layout newest");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("'newest'"), std::string::npos) << r.output;
}

// A copy of a fixture checkpoint in a scratch folder of its own: <root>/models/ckpt.
fs::path scratch_checkpoint(const std::string& name) {
  fs::path root = fs::path(perpo::test::kScratchDir) / "cli_export_rules" / name;
  fs::remove_all(root);
  fs::create_directories(root / "models" / "ckpt");
  for (const char* file : {"config.json", "model.safetensors"}) {
    fs::copy_file(fixture_dir("tiny_new_tied") / file, root / "models" / "ckpt" / file);
  }
  return root;
}

std::string text_of(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(CliExportRules, AFolderOfUserFilesIsRefusedUnlessForced) {
  // Before: export removed whatever DIR held.
  fs::path root = scratch_checkpoint("user_folder");
  fs::path checkpoint = root / "models" / "ckpt";
  fs::create_directories(root / "mine");
  std::ofstream(root / "mine" / "thesis.tex") << "years of work";
  PerpoRun r = run_perpo("export --checkpoint " + checkpoint.string() + " --output " +
                         (root / "mine").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("already holds files that perpo did not write"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("--force"), std::string::npos) << r.output;
  EXPECT_EQ(text_of(root / "mine" / "thesis.tex"), "years of work");
  // --force replaces it, as the help says.
  r = run_perpo("export --force --checkpoint " + checkpoint.string() + " --output " +
                (root / "mine").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(root / "mine" / "config.json"));
  EXPECT_TRUE(fs::exists(root / "mine" / ".perpo-output"));
}

TEST(CliExportRules, AnEarlierExportIsReplacedWithoutForce) {
  fs::path root = scratch_checkpoint("again");
  fs::path checkpoint = root / "models" / "ckpt";
  const std::string args =
      "export --checkpoint " + checkpoint.string() + " --output " + (root / "out").string();
  ASSERT_EQ(run_perpo(args).exit_code, 0);
  ASSERT_TRUE(fs::exists(root / "out" / ".perpo-output"));
  PerpoRun r = run_perpo(args + " --layout old");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("-> old"), std::string::npos) << r.output;
}

TEST(CliExportRules, ARegularFileDotAndParentsOfTheCheckpointAreRefused) {
  // Before: a file was replaced by a folder; "." or a parent of the checkpoint deleted the
  // checkpoint itself (exit 0).
  fs::path root = scratch_checkpoint("parents");
  fs::path checkpoint = root / "models" / "ckpt";
  std::ofstream(root / "notes.txt") << "keep me";
  struct Case {
    std::string output;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {(root / "notes.txt").string(), "is a regular file, not a folder"},
           {(root / "models").string(), "above the input"},
           {root.string(), "above the input"},
           {".", "above the input"},
           {(checkpoint / "export").string(), "inside the input folder"},
       }) {
    for (const char* force : {"", " --force"}) {
      PerpoRun r =
          c.output == "."
              ? run_perpo("export --checkpoint models/ckpt --output ." + std::string(force),
                          root.string())
              : run_perpo("export --checkpoint " + checkpoint.string() + " --output " + c.output +
                          force);
      EXPECT_EQ(r.exit_code, 2) << c.output << force << ": " << r.output;
      EXPECT_NE(r.output.find(c.expected), std::string::npos) << c.output << ": " << r.output;
    }
  }
  EXPECT_EQ(text_of(root / "notes.txt"), "keep me");
  EXPECT_TRUE(fs::exists(checkpoint / "model.safetensors"));
  EXPECT_FALSE(fs::exists(checkpoint / "export"));
}

}  // namespace
