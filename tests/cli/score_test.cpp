// `perpo score` end to end: runs the executable on a small list file (interfaces.md).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "run_perpo.h"
#include "test_paths.h"
#include "test_util.h"

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
  EXPECT_NE(r.output.find("bad.jsonl:1: a preference list needs at least 2 answers"),
            std::string::npos)
      << r.output;

  r = run_perpo_score("--reward iuo --input " + input.string() + " --output " + output.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("did you mean 'iou'"), std::string::npos) << r.output;
}

const std::string kTwoLists =
    R"({"ground_truth": "[0.1, 0.2, 0.3, 0.4]", "answers": ["[0.1, 0.2, 0.3, 0.4]", "no"]})"
    "\n"
    R"({"ground_truth": "[0.1, 0.2, 0.3, 0.4]", "answers": ["none", "[0.1, 0.2, 0.3, 0.4]"]})"
    "\n";

TEST(CliScore, OutputSymlinkIsFollowedNotReplaced) {
  // Before: the temp-file-and-rename write replaced the link with a regular file.
  fs::path dir = perpo::test::fresh_scratch_dir("cli_score", "symlink");
  std::ofstream(dir / "in.jsonl") << kTwoLists;
  std::ofstream(dir / "real.jsonl") << "old";
  fs::create_symlink("real.jsonl", dir / "link.jsonl");
  PerpoRun r = run_perpo_score("--reward iou --input " + (dir / "in.jsonl").string() +
                               " --output " + (dir / "link.jsonl").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;  // the file it points to exists: --force needed
  EXPECT_NE(r.output.find("only with --force"), std::string::npos) << r.output;
  r = run_perpo_score("--reward iou --force --input " + (dir / "in.jsonl").string() + " --output " +
                      (dir / "link.jsonl").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::is_symlink(dir / "link.jsonl"));
  std::stringstream written;
  written << std::ifstream(dir / "real.jsonl").rdbuf();
  EXPECT_NE(written.str().find("\"rewards\":[1.0,0.0]"), std::string::npos) << written.str();
}

TEST(CliScore, OutputDevNullStaysADevice) {
  fs::path dir = perpo::test::fresh_scratch_dir("cli_score", "dev_null");
  std::ofstream(dir / "in.jsonl") << kTwoLists;
  PerpoRun r = run_perpo_score("--reward iou --input " + (dir / "in.jsonl").string() +
                               " --output /dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
  EXPECT_NE(r.output.find("scored 4 answers in 2 records"), std::string::npos) << r.output;
}

TEST(CliScore, OutputDevStdoutGoesToThePipe) {
  fs::path dir = perpo::test::fresh_scratch_dir("cli_score", "dev_stdout");
  std::ofstream(dir / "in.jsonl") << kTwoLists;
  PerpoRun r = run_perpo_score("--reward iou --input " + (dir / "in.jsonl").string() +
                               " --output /dev/stdout");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"rewards\":[0.0,1.0]"), std::string::npos) << r.output;
}

// Runs `perpo score` with `fifo_input` fed by a child process writing `text`.
PerpoRun score_from_fifo(const fs::path& fifo_input, const std::string& text,
                         const std::string& args) {
  pid_t child = ::fork();
  if (child == 0) {
    std::ofstream(fifo_input) << text;
    ::_exit(0);
  }
  PerpoRun r = run_perpo_score(args);
  int status = 0;
  ::waitpid(child, &status, 0);
  return r;
}

TEST(CliScore, FifoInputWithFormatDetectionScoresEveryRecord) {
  // Before: detection consumed the first bytes of the pipe, and 0 or 1 of 2 records were scored.
  fs::path dir = perpo::test::fresh_scratch_dir("cli_score", "fifo_in");
  ASSERT_EQ(::mkfifo((dir / "in.pipe").c_str(), 0644), 0);
  PerpoRun r = score_from_fifo(dir / "in.pipe", kTwoLists,
                               "--reward iou --input " + (dir / "in.pipe").string() + " --output " +
                                   (dir / "out.jsonl").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("scored 4 answers in 2 records"), std::string::npos) << r.output;
}

TEST(CliScore, FifoOutputIsWrittenInPlace) {
  // Before: the FIFO was replaced by a regular file.
  fs::path dir = perpo::test::fresh_scratch_dir("cli_score", "fifo_out");
  std::ofstream(dir / "in.jsonl") << kTwoLists;
  ASSERT_EQ(::mkfifo((dir / "out.pipe").c_str(), 0644), 0);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t reader = ::fork();
  if (reader == 0) {  // reads the FIFO and reports how many lines came through
    std::ifstream in(dir / "out.pipe");
    int lines = 0;
    for (std::string line; std::getline(in, line);) ++lines;
    char count = static_cast<char>(lines);
    ::write(pipe_fds[1], &count, 1);
    ::_exit(0);
  }
  PerpoRun r = run_perpo_score("--reward iou --input " + (dir / "in.jsonl").string() +
                               " --output " + (dir / "out.pipe").string());
  char lines = 0;
  ASSERT_EQ(::read(pipe_fds[0], &lines, 1), 1);
  int status = 0;
  ::waitpid(reader, &status, 0);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(lines, 2);
  EXPECT_TRUE(fs::is_fifo(dir / "out.pipe"));
}

}  // namespace
