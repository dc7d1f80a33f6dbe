// Runs the Python peer of perpo bench (bench_peer.h).
#include "bench_peer.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "perpo/core/log.h"
#include "perpo/model/model_config.h"

namespace perpo::bench_detail {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTrainScript = "train_step_peer.py";
constexpr const char* kSampleScript = "generate_sampling_peer.py";

std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// bench/ of the source tree above the executable, or $PERPO_BENCH_PEER_DIR; empty if none.
fs::path peer_dir() {
  if (const char* env = std::getenv("PERPO_BENCH_PEER_DIR")) return env;
  std::error_code error;
  fs::path dir = fs::read_symlink("/proc/self/exe", error).parent_path();
  for (; !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
    if (fs::exists(dir / "bench" / kTrainScript, error)) return dir / "bench";
  }
  return {};
}

std::string python_for(const std::string& requested, const fs::path& scripts) {
  if (!requested.empty()) return requested;
  if (const char* env = std::getenv("PERPO_PYTHON")) return env;
  if (scripts.empty()) return "";
  const fs::path venv = scripts.parent_path() / ".venv" / "bin" / "python";
  std::error_code error;
  return fs::exists(venv, error) ? venv.string() : "";
}

/// The number after `key` in `text` (0 when absent).
double number_after(const std::string& text, const char* key) {
  const std::size_t at = text.rfind(key);
  return at == std::string::npos ? 0 : std::atof(text.c_str() + at + std::strlen(key));
}

/// Runs `command`, returns its output (stdout + stderr) and exit status.
std::pair<int, std::string> run_command(const std::string& command) {
  std::string output;
  std::FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "could not start the command"};
  char line[4096];
  while (std::fgets(line, sizeof(line), pipe)) output += line;
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string last_lines(const std::string& text, int count) {
  std::size_t at = text.size();
  for (int i = 0; i <= count && at != std::string::npos && at > 0; ++i) {
    at = text.rfind('\n', at - 1);
  }
  return at == std::string::npos ? text : text.substr(at + 1);
}

}  // namespace

PeerFigures run_peer(const PeerRequest& request, std::vector<std::string>& notes) {
  PeerFigures figures;
  const fs::path scripts = peer_dir();
  std::error_code error;
  if (scripts.empty() || !fs::exists(scripts / kTrainScript, error) ||
      !fs::exists(scripts / kSampleScript, error)) {
    notes.push_back("peer skipped: bench/" + std::string(kTrainScript) +
                    " not found above the perpo executable (set PERPO_BENCH_PEER_DIR)");
    return figures;
  }
  const std::string python = python_for(request.python, scripts);
  if (python.empty()) {
    notes.push_back("peer skipped: no Python (set PERPO_PYTHON, or run tools/setup.sh for .venv)");
    return figures;
  }
  // The peer builds transformers' model from perpo's own config.json of the shape.
  char folder[] = "/tmp/perpo-bench-XXXXXX";
  if (::mkdtemp(folder) == nullptr) {
    notes.push_back("peer skipped: cannot create a temporary folder in /tmp");
    return figures;
  }
  const fs::path config = fs::path(folder) / "config.json";
  save_model_config(request.shape.model, config);
  const BenchShape& shape = request.shape;
  const std::string common =
      " --config " + quoted(config.string()) + " --prompt " + std::to_string(shape.prompt_tokens) +
      " --answers " + std::to_string(shape.answers) + " --device " + quoted(request.device) +
      " --dtype " + request.dtype + " --threads " + std::to_string(request.threads) +
      " --iterations " + std::to_string(request.iterations);
  const std::string train_command =
      quoted(python) + " " + quoted((scripts / kTrainScript).string()) + common +
      " --answer-tokens " + std::to_string(shape.answer_tokens) + " --freeze-vision" +
      (shape.name == "7b" ? " --gradient-checkpointing" : "");
  const std::string sample_command = quoted(python) + " " +
                                     quoted((scripts / kSampleScript).string()) + common +
                                     " --new-tokens " + std::to_string(shape.sampled_tokens);
  const std::vector<std::pair<std::string, bool>> commands = {{train_command, true},
                                                              {sample_command, false}};
  for (const auto& [command, train] : commands) {
    notes.push_back("peer: " + command);
    PERPO_LOG_INFO("bench: running the peer: ", command);
    const auto [status, output] = run_command(command);
    const double seconds = number_after(output, train ? " s_per_list=" : "seconds_per_list ");
    const double peak = number_after(output, train ? "peak_memory_mb=" : "peak_memory_mb ");
    if (status != 0 || !(seconds > 0)) {
      notes.push_back("peer failed (exit " + std::to_string(status) +
                      "): " + last_lines(output, 3));
      continue;
    }
    (train ? figures.train_seconds_per_list : figures.sample_seconds_per_list) = seconds;
    (train ? figures.train_peak_mib : figures.sample_peak_mib) = peak;
  }
  fs::remove_all(folder, error);
  return figures;
}

}  // namespace perpo::bench_detail
