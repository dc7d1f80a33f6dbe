// `perpo demo` with several stages at once (pipeline_stages.h): the stage graph, its ranks, and
// the child processes that run the stages.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "perpo/core/error.h"
#include "perpo/core/signals.h"
#include "perpo/core/strings.h"
#include "perpo/demo/pipeline_stages.h"

extern char** environ;

namespace perpo {
namespace fs = std::filesystem;
namespace {

// Estimated seconds of a stage on one core (the 16m41 demo of docs/demo-study.md: ~3 ms per
// stage-1 record, ~0.7 ms per sampled answer, ~4 ms per SFT record and ~2.5 ms per list answer
// in stage 2, ~1.5 ms per evaluated record).
double stage_cost(const DemoPlan& plan, const std::string& stage) {
  const double tasks = static_cast<double>(plan.tasks.size());
  if (stage == "sft") return 3e-3 * plan.sft_steps * plan.sft_batch;
  if (stage == "sample") return 0.7e-3 * tasks * plan.pref_records * plan.answers;
  if (stage == "arm-sft") return 4e-3 * plan.pref_steps * plan.lists_per_step;
  if (stage == "eval") {
    return 1.5e-3 * tasks * plan.test_records * static_cast<double>(plan.arms.size() + 1);
  }
  const double answers = plan.answers + (plan.ground_truth_in_list ? 1 : 0);
  return 2.5e-3 * plan.pref_steps * plan.lists_per_step * answers;
}

// The metrics.jsonl of a stage that trains, for the progress lines ("" when it does not train).
fs::path stage_metrics(const DemoOptions& chain, const std::string& stage) {
  if (stage == "sft") return chain.out / "sft" / "run" / "metrics.jsonl";
  if (starts_with(stage, "arm-"))
    return chain.out / "arms" / stage.substr(4) / "run" / "metrics.jsonl";
  return {};
}

// The step of the last line of a metrics.jsonl, or -1 (no file yet, or no step).
long last_step(const fs::path& metrics) {
  if (metrics.empty()) return -1;
  std::ifstream in(metrics, std::ios::binary | std::ios::ate);
  if (!in) return -1;
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - 4096);
  in.seekg(from);
  std::string tail(static_cast<std::size_t>(size - from), '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  long step = -1;
  std::size_t begin = 0;
  while (begin < tail.size()) {
    std::size_t end = tail.find('\n', begin);
    if (end == std::string::npos) break;  // a line still being written
    const auto line = nlohmann::json::parse(tail.substr(begin, end - begin), nullptr, false);
    if (line.is_object() && line.contains("step") && line["step"].is_number_integer()) {
      step = line["step"].get<long>();
    }
    begin = end + 1;
  }
  return step;
}

std::string exe_path() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  PERPO_CHECK(!error, "cannot find perpo's own executable (/proc/self/exe): ", error.message());
  return self.string();
}

// Starts `perpo demo --run-stage <task>/<stage>` in its own process group (a Ctrl-C reaches the
// parent alone, which passes one SIGTERM on), without progress bars (several stages share the
// terminal).
pid_t spawn_stage(const std::string& exe, const DemoSuiteOptions& options,
                  const DemoStageNode& node) {
  std::vector<std::string> args = {exe,
                                   "demo",
                                   "--out",
                                   options.out.string(),
                                   "--seed",
                                   std::to_string(options.seed),
                                   "--run-stage",
                                   node.task + "/" + node.stage,
                                   "--parent-pid",
                                   std::to_string(static_cast<long>(getpid()))};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_text;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!starts_with(*e, "PERPO_PROGRESS=")) env_text.emplace_back(*e);
  }
  env_text.emplace_back("PERPO_PROGRESS=0");
  std::vector<char*> envp;
  for (auto& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, exe.c_str(), nullptr, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  PERPO_CHECK(rc == 0, "cannot start the ", node.task, "/", node.stage,
              " stage: posix_spawn: ", std::strerror(rc));
  return pid;
}

std::string minutes_text(double seconds) {
  const long s = static_cast<long>(seconds);
  char text[32];
  std::snprintf(text, sizeof text, "%ldm%02ld", s / 60, s % 60);
  return text;
}

}  // namespace

std::vector<DemoStageNode> demo_stage_graph(const std::vector<DemoOptions>& chains) {
  std::vector<DemoStageNode> nodes;
  for (const DemoOptions& chain : chains) {
    const DemoPlan& plan = chain.plan();
    const std::string task = chain.out.filename().string();  // <out>/<task>: the chain's name
    auto add = [&](const std::string& stage, std::vector<std::size_t> after) {
      nodes.push_back({task, stage, std::move(after), stage_cost(plan, stage), 0.0});
      return nodes.size() - 1;
    };
    const std::size_t sft = add("sft", {});
    const std::size_t sample = add("sample", {sft});
    std::vector<std::size_t> arms;
    for (const auto& arm : plan.arms) arms.push_back(add("arm-" + arm, {sample}));
    add("eval", arms.empty() ? std::vector<std::size_t>{sample} : arms);
  }
  // Ranks from the end: every node comes after the nodes it waits for.
  for (std::size_t i = nodes.size(); i-- > 0;) {
    double longest_after = 0;
    for (std::size_t j = i + 1; j < nodes.size(); ++j) {
      const auto& after = nodes[j].after;
      if (std::find(after.begin(), after.end(), i) != after.end()) {
        longest_after = std::max(longest_after, nodes[j].rank);
      }
    }
    nodes[i].rank = nodes[i].cost + longest_after;
  }
  return nodes;
}

void run_stages_in_processes(const DemoSuiteOptions& options,
                             const std::vector<DemoOptions>& chains, int jobs) {
  const std::vector<DemoStageNode> nodes = demo_stage_graph(chains);
  enum class State { kWaiting, kRunning, kDone, kFailed };
  std::vector<State> state(nodes.size(), State::kWaiting);
  std::vector<pid_t> pids(nodes.size(), -1);
  std::vector<std::chrono::steady_clock::time_point> started(nodes.size());
  auto chain_of = [&](const DemoStageNode& node) -> const DemoOptions& {
    for (const auto& chain : chains) {
      if (chain.out.filename().string() == node.task) return chain;
    }
    return chains.front();
  };
  const std::string exe = exe_path();
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  bool stopping = false;   // a stage failed, or a signal came: start nothing more
  bool forwarded = false;  // the running stages were sent SIGTERM
  std::string failure;     // the first stage that failed and how
  int failure_code = 0;
  std::size_t done = 0, running = 0;
  for (;;) {
    // Start the ready stages of the highest rank while processes are free.
    while (!stopping && running < static_cast<std::size_t>(jobs)) {
      std::size_t best = nodes.size();
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (state[i] != State::kWaiting) continue;
        const bool ready = std::all_of(nodes[i].after.begin(), nodes[i].after.end(),
                                       [&](std::size_t j) { return state[j] == State::kDone; });
        if (ready && (best == nodes.size() || nodes[i].rank > nodes[best].rank)) best = i;
      }
      if (best == nodes.size()) break;
      pids[best] = spawn_stage(exe, options, nodes[best]);
      state[best] = State::kRunning;
      started[best] = std::chrono::steady_clock::now();
      ++running;
    }
    if (running == 0) break;

    bool reaped = false;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (state[i] != State::kRunning) continue;
      int status = 0;
      const pid_t r = waitpid(pids[i], &status, WNOHANG);
      if (r == 0 || (r < 0 && errno == EINTR)) continue;
      reaped = true;
      --running;
      const std::string name = nodes[i].task + "/" + nodes[i].stage;
      const double seconds = seconds_since(started[i]);
      if (r == pids[i] && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        state[i] = State::kDone;
        ++done;
        stage_line("demo", name + " finished in " + std::to_string(static_cast<long>(seconds)) +
                               " s (" + std::to_string(done) + " of " +
                               std::to_string(nodes.size()) + " stages)");
        continue;
      }
      state[i] = State::kFailed;
      if (failure.empty() && !stopping) {
        failure =
            name +
            (r == pids[i] && WIFEXITED(status)
                 ? " failed (exit code " + std::to_string(WEXITSTATUS(status)) +
                       "; its error is above)"
                 : " ended by signal " +
                       std::to_string(r == pids[i] && WIFSIGNALED(status) ? WTERMSIG(status) : -1));
        failure_code = r == pids[i] && WIFEXITED(status) ? WEXITSTATUS(status) : 1;
      }
      stopping = true;
    }
    if (stop_requested()) stopping = true;
    if (stopping && !forwarded) {
      // One SIGTERM to each stage still running: it saves a checkpoint and ends.
      forwarded = true;
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (state[i] == State::kRunning) kill(pids[i], SIGTERM);
      }
      if (running > 0) {
        stage_line("demo", "stopping: waiting for " + std::to_string(running) +
                               " running stage(s) to save a checkpoint");
      }
    }
    if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto now = std::chrono::steady_clock::now();
    if (now - last_report >= std::chrono::seconds(60) && running > 0) {
      last_report = now;
      std::string what;
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (state[i] != State::kRunning) continue;
        if (!what.empty()) what += ", ";
        what += nodes[i].task + "/" + nodes[i].stage;
        const long step = last_step(stage_metrics(chain_of(nodes[i]), nodes[i].stage));
        if (step >= 0) what += " (step " + std::to_string(step) + ")";
      }
      stage_line("demo", minutes_text(seconds_since(start)) + ": " + what + "; " +
                             std::to_string(done) + " of " + std::to_string(nodes.size()) +
                             " stages done");
    }
  }
  if (!failure.empty()) {
    Error error(failure_code == 2 ? ErrorKind::kInput : ErrorKind::kRuntime, "the " + failure);
    throw std::move(error).hint(
        "finished stages are kept: run the same perpo demo again to continue");
  }
  PERPO_CHECK(done == nodes.size(), "stopped by a signal with ", done, " of ", nodes.size(),
              " stages done; run the demo again to continue");
}

}  // namespace perpo
