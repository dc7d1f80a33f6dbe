// perpo train end to end, as a process: SIGTERM finishes the step, saves and exits 0; SIGKILL in
// the middle of a checkpoint write leaves the previous one loadable and --resume carries on;
// a resume with another config exits 2 naming the keys; export of a training checkpoint;
// train.eval_every writes eval lines.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "perpo/config/config_io.h"
#include "perpo/model/run_checkpoint.h"
#include "perpo/train/trainer.h"
#include "run_perpo.h"
#include "test_paths.h"
#include "test_util.h"
#include "train_fixture.h"
#include "train_runs.h"

extern char** environ;

namespace {
namespace fs = std::filesystem;
using perpo::test::run_perpo;

std::string train_args(const fs::path& dir, const std::vector<std::string>& extra) {
  auto overrides = perpo::test::tiny_train_overrides(dir / "lists.jsonl", dir / "run");
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  std::string args = "train";
  for (const auto& o : overrides) args += " '" + o + "'";
  return args;
}

// The training `perpo train` runs (the library call cmd_train.cpp makes, with the same config),
// killed while writing its k-th checkpoint (test::train_killed_while_checkpointing).
int train_killed_while_checkpointing(const fs::path& dir, const std::vector<std::string>& extra,
                                     int k) {
  auto overrides = perpo::test::tiny_train_overrides(dir / "lists.jsonl", dir / "run");
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  return perpo::test::train_killed_while_checkpointing(perpo::load_config("", overrides), k);
}

using perpo::test::killed_by_sigkill;

std::size_t metrics_line_count(const fs::path& run_dir) {
  std::ifstream in(run_dir / "metrics.jsonl");
  std::size_t lines = 0;
  std::string line;
  while (std::getline(in, line)) lines += !line.empty();
  return lines;
}

// Starts `perpo train ...` as a child process (output to `log`) and returns its pid.
pid_t spawn_train(const fs::path& dir, const std::vector<std::string>& extra, const fs::path& log) {
  std::vector<std::string> args = {"train"};
  for (const auto& o : perpo::test::tiny_train_overrides(dir / "lists.jsonl", dir / "run")) {
    args.push_back(o);
  }
  args.insert(args.end(), extra.begin(), extra.end());
  const pid_t pid = perpo::test::spawn_perpo(args, log.string());
  EXPECT_GT(pid, 0);
  return pid;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(CliTrain, SigtermFinishesTheStepSavesAndExitsZero) {
  fs::path dir = perpo::test::fresh_scratch_dir("cli_train", "sigterm");
  perpo::test::write_train_lists(dir, 4, 3, true);
  pid_t pid = spawn_train(dir, {"train.max_steps=100000", "train.lists_per_step=1"}, dir / "log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (metrics_line_count(dir / "run") < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(metrics_line_count(dir / "run"), 2u) << read_text(dir / "log");
  // A second perpo train on the same run.dir while the first runs: refused with its pid, and
  // nothing of the first run is touched (issue 21: both used to exit 0, interleaving lines).
  const std::string metrics_before = read_text(dir / "run" / "metrics.jsonl");
  auto second = run_perpo(train_args(dir, {"train.max_steps=100000", "train.lists_per_step=1"}));
  EXPECT_EQ(second.exit_code, 2) << second.output;
  EXPECT_NE(
      second.output.find("is in use by another perpo process (pid " + std::to_string(pid) + ")"),
      std::string::npos)
      << second.output;
  EXPECT_EQ(read_text(dir / "run" / "metrics.jsonl").rfind(metrics_before, 0), 0u);
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << read_text(dir / "log");
  EXPECT_EQ(WEXITSTATUS(status), 0) << read_text(dir / "log");
  EXPECT_NE(read_text(dir / "log").find("stopped by signal"), std::string::npos);
  auto latest = perpo::latest_run_checkpoint(dir / "run" / "checkpoints");
  ASSERT_TRUE(latest.has_value());
  // The checkpoint is the last finished (and logged) step.
  EXPECT_EQ(perpo::load_run_checkpoint(*latest).step,
            static_cast<std::int64_t>(metrics_line_count(dir / "run")));
}

// run.log_level quiets the run's log lines; --log-level, when given, wins over it.
TEST(CliTrain, RunLogLevelAppliesUnlessTheFlagIsGiven) {
  fs::path dir = perpo::test::fresh_scratch_dir("cli_train", "log_level");
  perpo::test::write_train_lists(dir, 2, 3, true);
  auto quiet = run_perpo(train_args(dir, {"train.max_steps=1", "run.log_level=warn"}));
  ASSERT_EQ(quiet.exit_code, 0) << quiet.output;
  EXPECT_EQ(quiet.output.find("[info]"), std::string::npos) << quiet.output;
  auto loud =
      run_perpo("--log-level info " + train_args(dir, {"train.max_steps=1", "run.log_level=warn",
                                                       "run.dir=" + (dir / "loud").string()}));
  ASSERT_EQ(loud.exit_code, 0) << loud.output;
  EXPECT_NE(loud.output.find("[info]"), std::string::npos) << loud.output;
}

TEST(CliTrain, SigkillWhileCheckpointingLeavesThePreviousOne) {
  fs::path dir = perpo::test::fresh_scratch_dir("cli_train", "sigkill");
  perpo::test::write_train_lists(dir, 4, 3, true);
  const std::vector<std::string> extra = {"train.max_steps=4", "train.checkpoint_every=1"};
  EXPECT_TRUE(killed_by_sigkill(train_killed_while_checkpointing(dir, extra, 2)));
  const fs::path root = dir / "run" / "checkpoints";
  auto all = perpo::list_run_checkpoints(root);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(perpo::load_run_checkpoint(all[0]).step, 1);
  bool partial = false;
  for (const auto& entry : fs::directory_iterator(root)) {
    partial |= entry.path().filename().string().rfind(".tmp-step-2", 0) == 0;
  }
  EXPECT_TRUE(partial);  // what the kill left behind, never mistaken for a checkpoint

  auto resumed = run_perpo(train_args(dir, extra) + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("steps: 4 of 4"), std::string::npos) << resumed.output;
  EXPECT_EQ(perpo::list_run_checkpoints(root).back().filename(), "step-4");
  EXPECT_EQ(metrics_line_count(dir / "run"), 4u);

  // Resume with another objective: refused, exit 2, the key named.
  auto refused = run_perpo(train_args(dir, extra) + " loss.gamma=1 --resume");
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("loss.gamma: 0.5 in the checkpoint, 1 now"), std::string::npos)
      << refused.output;

  // The checkpoint exports to a Hugging Face folder.
  auto exported = run_perpo("export --checkpoint " + (root / "step-4").string() + " --output " +
                            (dir / "hf").string());
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_TRUE(fs::exists(dir / "hf" / "config.json"));
  EXPECT_TRUE(fs::exists(dir / "hf" / "model.safetensors"));
}

TEST(CliTrain, RestartAfterAKillBeforeTheFirstCheckpointStartsMetricsAfresh) {
  fs::path dir = perpo::test::fresh_scratch_dir("cli_train", "restart");
  perpo::test::write_train_lists(dir, 4, 3, true);
  const std::vector<std::string> extra = {"train.max_steps=3", "train.checkpoint_every=2"};
  // Killed writing its first checkpoint.
  ASSERT_TRUE(killed_by_sigkill(train_killed_while_checkpointing(dir, extra, 1)));
  ASSERT_EQ(metrics_line_count(dir / "run"), 2u);  // steps 1 and 2 of the dead run
  auto fresh = run_perpo(train_args(dir, extra));
  ASSERT_EQ(fresh.exit_code, 0) << fresh.output;
  // Steps 1, 2, 3 once each: the dead run's lines are gone.
  std::ifstream in(dir / "run" / "metrics.jsonl");
  std::vector<int> steps;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) steps.push_back(nlohmann::json::parse(line).at("step").get<int>());
  }
  EXPECT_EQ(steps, (std::vector<int>{1, 2, 3}));
}

TEST(CliTrain, ResumeOnDataThatChangedAtTheSamePathIsRefused) {
  fs::path dir = perpo::test::fresh_scratch_dir("cli_train", "data_changed");
  perpo::test::write_train_lists(dir, 4, 3, true);
  auto first = run_perpo(train_args(dir, {"train.max_steps=2"}));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  perpo::test::write_train_lists(dir, 5, 3, true);  // other lists at the same path
  auto resumed = run_perpo(train_args(dir, {"train.max_steps=4"}) + " --resume");
  EXPECT_EQ(resumed.exit_code, 2) << resumed.output;
  EXPECT_NE(resumed.output.find("is not the data the checkpoint was trained on"), std::string::npos)
      << resumed.output;
  perpo::test::write_train_lists(dir, 4, 3, true);  // the run's own data again: it resumes
  resumed = run_perpo(train_args(dir, {"train.max_steps=4"}) + " --resume");
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
}

TEST(CliTrain, BadInputsExitTwo) {
  fs::path dir = perpo::test::fresh_scratch_dir("cli_train", "bad");
  perpo::test::write_train_lists(dir, 2, 3, true);
  auto no_data = run_perpo(train_args(dir, {"data.train=" + (dir / "missing.jsonl").string()}));
  EXPECT_EQ(no_data.exit_code, 2) << no_data.output;
  EXPECT_NE(no_data.output.find("missing.jsonl"), std::string::npos) << no_data.output;
  auto no_checkpoint = run_perpo(train_args(dir, {}) + " --resume");
  EXPECT_EQ(no_checkpoint.exit_code, 2) << no_checkpoint.output;
  EXPECT_NE(no_checkpoint.output.find("no checkpoint"), std::string::npos);
  auto image_size = run_perpo(train_args(dir, {"image.size=32"}));
  EXPECT_EQ(image_size.exit_code, 2);
  EXPECT_NE(image_size.output.find("image.size"), std::string::npos) << image_size.output;
}

TEST(CliTrain, EvalEveryWritesEvalLines) {
  fs::path dir = perpo::test::fresh_scratch_dir("cli_train", "eval_every");
  perpo::test::write_train_lists(dir, 2, 3, true);
  fs::path records = perpo::test::write_train_records(dir / "eval", 2);
  auto result = run_perpo(
      train_args(dir, {"train.max_steps=3", "train.lists_per_step=1", "train.eval_every=2",
                       "eval.max_new_tokens=4", "data.eval=" + records.string()}));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::ifstream in(dir / "run" / "metrics.jsonl");
  std::string line, eval_line;
  while (std::getline(in, line)) {
    if (line.find("eval/grounding/acc@0.5") != std::string::npos) {
      EXPECT_TRUE(eval_line.empty()) << "one evaluation (step 2) in 3 steps";
      eval_line = line;
    }
  }
  EXPECT_NE(eval_line.find("\"step\":2"), std::string::npos) << eval_line;
  EXPECT_NE(eval_line.find("\"eval/grounding/count\":2"), std::string::npos) << eval_line;
}

}  // namespace
