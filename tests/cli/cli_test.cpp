// Runs the perpo executable as a user would and checks output and exit codes (interfaces.md).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "test_paths.h"

namespace {

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

Result run_perpo(const std::string& args) {
  std::string command = std::string(perpo::test::kPerpoExe) + " " + args + " 2>&1";
  Result result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe)) result.output += buffer.data();
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string configs_dir() { return std::string(perpo::test::kTestsDir) + "/../configs"; }

TEST(Cli, VersionNamesLibTorchAndCuda) {
  Result r = run_perpo("--version");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("perpo "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("LibTorch 2."), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("CUDA: "), std::string::npos) << r.output;
}

TEST(Cli, ConfigShowPrintsResolvedYamlWithOverrides) {
  Result r = run_perpo("config show --config " + configs_dir() + "/demo.yaml optim.lr=0.002");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("  lr: 0.002  #"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("  num_answers: 8  #"), std::string::npos) << r.output;
}

TEST(Cli, BadInputExitsWithTwoAndOneClearSentence) {
  Result r = run_perpo("config show optim.lrr=1");
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
  Result r = run_perpo("--help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("config"), std::string::npos) << r.output;
}

}  // namespace
