// perpo demo with stages in child processes (--jobs 2), stopped as users stop it: SIGTERM to the
// demo passes one SIGTERM to each running stage, which saves a checkpoint; a demo killed outright
// (SIGKILL, no chance to pass anything on) still leaves no stage running, each saving as well.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "perpo/model/run_checkpoint.h"
#include "run_perpo.h"
#include "test_paths.h"
#include "test_util.h"

namespace {
namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

pid_t spawn_demo(const fs::path& out, const fs::path& log) {
  const pid_t pid = perpo::test::spawn_perpo(
      {"demo", "--quick", "--seed", "1", "--jobs", "2", "--out", out.string()}, log.string());
  EXPECT_GT(pid, 0);
  return pid;
}

// Processes whose command line names `out` and --run-stage: the demo's stages.
std::vector<pid_t> stage_processes(const fs::path& out) {
  std::vector<pid_t> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = read_text(entry.path() / "cmdline");
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (cmdline.find("--run-stage") != std::string::npos &&
        cmdline.find(out.string()) != std::string::npos) {
      found.push_back(std::stoi(name));
    }
  }
  return found;
}

// Waits until both chains' stage 1 has logged a step (first line at step 25), so that both run.
void wait_for_both_stage_ones(const fs::path& out, const fs::path& log) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  auto logged = [&](const std::string& task) {
    return !read_text(out / task / "sft" / "run" / "metrics.jsonl").empty();
  };
  while (!(logged("grounding") && logged("ocr")) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(logged("grounding") && logged("ocr")) << read_text(log);
  EXPECT_EQ(stage_processes(out).size(), 2u) << read_text(log);
}

void expect_both_stage_ones_saved(const fs::path& out) {
  for (const std::string task : {"grounding", "ocr"}) {
    const auto latest = perpo::latest_run_checkpoint(out / task / "sft" / "run" / "checkpoints");
    ASSERT_TRUE(latest.has_value()) << task;
    EXPECT_GT(perpo::load_run_checkpoint(*latest).step, 0) << task;
    EXPECT_FALSE(std::filesystem::exists(out / task / "sft" / "done.json")) << task;
  }
}

TEST(CliDemo, SigtermStopsEveryRunningStageWhichSavesACheckpoint) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_demo", "sigterm");
  const fs::path out = dir / "out", log = dir / "log";
  const pid_t pid = spawn_demo(out, log);
  wait_for_both_stage_ones(out, log);
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << read_text(log);
  EXPECT_EQ(WEXITSTATUS(status), 1) << read_text(log);
  const std::string text = read_text(log);
  EXPECT_NE(text.find("stopping: waiting for 2 running stage(s)"), std::string::npos) << text;
  EXPECT_NE(text.find("stopped by a signal with 0 of 14 stages done"), std::string::npos) << text;
  EXPECT_TRUE(stage_processes(out).empty());
  expect_both_stage_ones_saved(out);
}

TEST(CliDemo, StagesOfADemoKilledOutrightStopAndSave) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_demo", "sigkill");
  const fs::path out = dir / "out", log = dir / "log";
  const pid_t pid = spawn_demo(out, log);
  wait_for_both_stage_ones(out, log);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  // The stages notice (the kernel sends each SIGTERM when its parent dies), save and end.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!stage_processes(out).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(stage_processes(out).empty()) << read_text(log);
  expect_both_stage_ones_saved(out);
}

}  // namespace
