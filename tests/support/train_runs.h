// What the trainer tests share about finished runs: metrics.jsonl lines, checkpoints whose
// weights must be equal, and a training killed in the middle of writing a checkpoint.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/config/config_io.h"
#include "perpo/model/run_checkpoint.h"
#include "perpo/train/trainer.h"
#include "train_fixture.h"

namespace perpo::test {

/// The tiny model's training config (test::tiny_train_overrides) with `extra` overrides.
inline Config tiny_config(const std::filesystem::path& data, const std::filesystem::path& run_dir,
                          const std::vector<std::string>& extra = {}) {
  auto overrides = tiny_train_overrides(data, run_dir);
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  return load_config("", overrides);
}

/// Every line of <run_dir>/metrics.jsonl, parsed.
inline std::vector<nlohmann::json> metrics_lines(const std::filesystem::path& run_dir) {
  std::ifstream in(run_dir / "metrics.jsonl");
  std::vector<nlohmann::json> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

/// The weights of two checkpoint folders are equal bit for bit, tensor by tensor.
inline void expect_same_weights(const std::filesystem::path& a, const std::filesystem::path& b) {
  const auto wa = load_run_checkpoint(a).weights;
  const auto wb = load_run_checkpoint(b).weights;
  ASSERT_EQ(wa.size(), wb.size());
  for (std::size_t i = 0; i < wa.size(); ++i) {
    EXPECT_EQ(wa[i].first, wb[i].first);
    EXPECT_TRUE(torch::equal(wa[i].second, wb[i].second)) << wa[i].first;
  }
}

/// The training of `config` in a child process that SIGKILLs itself in the middle of writing its
/// k-th checkpoint, after weights.safetensors: a crash at the worst moment (no fault hook ships
/// in the perpo binary). Returns the child's wait status.
inline int train_killed_while_checkpointing(const Config& config, int k) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    try {
      TrainerHooks hooks;
      int written = 0;
      hooks.checkpoint_fault = [&](const std::string& file) {
        if (file == "weights.safetensors" && ++written == k) std::raise(SIGKILL);
      };
      run_training(config, {}, hooks);
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

inline bool killed_by_sigkill(int status) {
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

}  // namespace perpo::test
