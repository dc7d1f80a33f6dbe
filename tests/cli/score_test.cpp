// `perpo score` end to end: runs the executable on a small list file (interfaces.md).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "run_perpo.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;
using perpo::test::PerpoRun;

PerpoRun run_perpo_score(const std::string& args) {
  return perpo::test::run_perpo("score " + args);
}

fs::path scratch_file(const std::string& name, const std::string& content) {
  fs::path dir = fs::path(perpo::test::kScratchDir) / "cli_score";
  fs::create_directories(dir);
  std::ofstream(dir / name) << content;
  return dir / name;
}

TEST(CliScore, ScoresListsAndPrintsASummary) {
  fs::path input = scratch_file(
      "lists.jsonl",
      R"({"ground_truth": "[0.61, 0.1, 0.77, 0.54]", "answers": ["[0.61, 0.1, 0.77, 0.54]", "nothing"]})"
      "\n");
  fs::path output = input.parent_path() / "scored.jsonl";
  fs::remove(output);
  PerpoRun r =
      run_perpo_score("--reward iou --input " + input.string() + " --output " + output.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Rewards 1 and 0 (no box): mean 0.5.
  EXPECT_NE(r.output.find("scored 2 answers in 1 records with reward 'iou'"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("mean reward 0.5000"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no_box 1"), std::string::npos) << r.output;
  std::stringstream written;
  written << std::ifstream(output).rdbuf();
  EXPECT_NE(written.str().find(R"("reward_notes":["ok","no_box"])"), std::string::npos)
      << written.str();
  EXPECT_NE(written.str().find(R"("rewards":[1.0,0.0])"), std::string::npos) << written.str();
}

TEST(CliScore, BadInputExitsWithTwo) {
  fs::path input = scratch_file("bad.jsonl", "{\"answers\": [\"a\"]}\n");
  fs::path output = input.parent_path() / "bad_out.jsonl";
  PerpoRun r = run_perpo_score("--reward exact_match --input " + input.string() + " --output " +
                               output.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("bad.jsonl:1: record has no usable 'ground_truth'"), std::string::npos)
      << r.output;

  r = run_perpo_score("--reward iuo --input " + input.string() + " --output " + output.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("did you mean 'iou'"), std::string::npos) << r.output;
}

}  // namespace
