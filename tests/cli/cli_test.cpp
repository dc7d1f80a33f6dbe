// Runs the perpo executable as a user would and checks output and exit codes (interfaces.md).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "run_perpo.h"
#include "test_paths.h"

namespace {

using perpo::test::PerpoRun;
using perpo::test::run_perpo;

std::string configs_dir() { return std::string(perpo::test::kTestsDir) + "/../configs"; }

TEST(Cli, VersionNamesLibTorchAndCuda) {
  PerpoRun r = run_perpo("--version");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("perpo "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("LibTorch 2."), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("CUDA: "), std::string::npos) << r.output;
}

TEST(Cli, ConfigShowPrintsResolvedYamlWithOverrides) {
  PerpoRun r = run_perpo("config show --config " + configs_dir() + "/demo/ocr.yaml optim.lr=0.002");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("  lr: 0.002  #"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("  ocr_lexicon: 16  #"), std::string::npos) << r.output;  // the file's
  EXPECT_NE(r.output.find("  num_answers: 20  #"), std::string::npos) << r.output;  // a default
}

TEST(Cli, BadInputExitsWithTwoAndOneClearSentence) {
  PerpoRun r = run_perpo("config show optim.lrr=1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("perpo: error: unknown key 'optim.lrr'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean 'optim.lr'?"), std::string::npos) << r.output;

  r = run_perpo("config show --config /no/such/file.yaml");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("/no/such/file.yaml"), std::string::npos) << r.output;

  r = run_perpo("no-such-command");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(Cli, HelpListsSubcommands) {
  PerpoRun r = run_perpo("--help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("config"), std::string::npos) << r.output;
}

}  // namespace
