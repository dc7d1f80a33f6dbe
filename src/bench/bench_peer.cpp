// Runs the Python peer of perpo bench (bench_peer.h).
#include "bench_peer.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/core/signals.h"
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

/// Runs `command`, returns its output (stdout + stderr) and exit status (-1: it did not exit).
std::pair<int, std::string> run_command(const std::string& command) {
  std::string output;
  std::FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "could not start the command"};
  char line[4096];
  while (std::fgets(line, sizeof(line), pipe)) output += line;
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

/// The last `count` lines of `text`, trailing blank space left out ("" for an empty text).
std::string last_lines(std::string text, int count) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (count <= 0) return "";
  std::size_t start = text.size();
  for (int i = 0; i < count; ++i) {
    if (start == 0) return text;
    start = text.rfind('\n', start - 1);
    if (start == std::string::npos) return text;
  }
  return text.substr(start + 1);
}

/// What a command printed, for "it printed ...": "nothing", or ":" and its last lines.
std::string printed(const std::string& output) {
  const std::string tail = last_lines(output, 6);
  return tail.empty() ? "nothing" : ":\n" + tail;
}

/// The top-level module of Python's "No module named 'X'" in `output`; "" when there is none.
std::string missing_module(const std::string& output) {
  const std::string key = "No module named '";
  const std::size_t at = output.rfind(key);
  if (at == std::string::npos) return "";
  const std::size_t begin = at + key.size();
  const std::size_t end = output.find_first_of("'.", begin);
  return end == std::string::npos ? "" : output.substr(begin, end - begin);
}

/// The error of a peer command (`python` running `what`) that failed with `status`.
Error peer_error(const std::string& python, const std::string& what, int status,
                 const std::string& output) {
  const std::string no_peer = "; or pass --no-peer to measure perpo alone";
  const std::string module = missing_module(output);
  if (!module.empty()) {
    const std::string install =
        module == "transformers"
            ? "run tools/setup.sh --fixtures (it installs transformers into .venv), or " + python +
                  " -m pip install 'transformers>=4.45,<5'"
            : "run " + python + " -m pip install " + module;
    return perpo::runtime_error("the bench peer's Python ", python, " lacks the Python module '",
                                module, "' (", what, ": No module named '", module, "')")
        .hint(install + no_peer);
  }
  const std::string ended =
      status >= 0 ? "exited with status " + std::to_string(status) : "did not exit normally";
  return perpo::runtime_error("the bench peer failed: ", python, " ", what, " ", ended,
                              "; it printed ", printed(output))
      .hint("fix the peer's Python (--python, $PERPO_PYTHON)" + no_peer);
}

/// A new folder in the temporary folder ($TMPDIR or /tmp), removed with its files when this goes
/// out of scope (a failing peer included) or when a signal ends perpo meanwhile.
class TempFolder {
 public:
  explicit TempFolder(const std::string& prefix) : path_(make(prefix)), guard_(path_) {}
  ~TempFolder() {
    std::error_code error;
    fs::remove_all(path_, error);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  const fs::path& path() const { return path_; }

 private:
  static fs::path make(const std::string& prefix) {
    std::string pattern = (fs::temp_directory_path() / (prefix + "XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw perpo::runtime_error("cannot create a temporary folder ", pattern, ": ",
                                 std::strerror(errno));
    }
    return pattern;
  }

  fs::path path_;
  TempPathGuard guard_;
};

}  // namespace

bool peer_runs(const BenchShape& shape) { return shape.model_type == "llava"; }

std::string no_peer_note(const BenchShape& shape) {
  return "peer: none for shape " + shape.name + " (" + shape.model_type + "): bench/" +
         kTrainScript + " and bench/" + kSampleScript +
         " run transformers' LLaVA only; no peer figures, no ratio";
}

PeerProgram find_peer(const std::string& requested_python) {
  PeerProgram program;
  program.scripts = peer_dir();
  program.python = python_for(requested_python, program.scripts);
  if (program.python.empty()) {
    throw perpo::runtime_error("perpo bench found no Python for its peer (torch + transformers)")
        .hint(
            "pass --python or set PERPO_PYTHON, or run tools/setup.sh --fixtures (a .venv with "
            "torch and transformers); or pass --no-peer to measure perpo alone");
  }
  const std::string imports = "-c 'import torch, transformers'";
  const auto [status, output] = run_command(quoted(std::as_const(program.python)) + " " + imports);
  if (status != 0) throw peer_error(program.python, imports, status, output);
  std::error_code error;
  if (program.scripts.empty() || !fs::exists(program.scripts / kTrainScript, error) ||
      !fs::exists(program.scripts / kSampleScript, error)) {
    throw perpo::runtime_error(
        "perpo bench's peer scripts (bench/", kTrainScript, ", bench/", kSampleScript,
        ") were not found ",
        program.scripts.empty() ? "above the perpo executable" : "in " + program.scripts.string())
        .hint(
            "set PERPO_BENCH_PEER_DIR to the bench/ folder of perpo's source tree; or pass "
            "--no-peer to measure perpo alone");
  }
  return program;
}

PeerFigures run_peer(const PeerRequest& request, std::vector<std::string>& notes) {
  PeerFigures figures;
  const PeerProgram& program = request.program;
  // The peer builds transformers' model from perpo's own config.json of the shape.
  const TempFolder folder("perpo-bench-");
  const fs::path config = folder.path() / "config.json";
  PERPO_CHECK(peer_runs(request.shape), "the bench peer runs LLaVA shapes only, not ",
              request.shape.name);
  save_model_config(request.shape.llava, config);
  const BenchShape& shape = request.shape;
  const std::string common =
      " --config " + quoted(config.string()) + " --prompt " + std::to_string(shape.prompt_tokens) +
      " --answers " + std::to_string(shape.answers) + " --device " + quoted(request.device) +
      " --dtype " + request.dtype + " --threads " + std::to_string(request.threads) +
      " --iterations " + std::to_string(request.iterations);
  const fs::path train_script = program.scripts / kTrainScript;
  const fs::path sample_script = program.scripts / kSampleScript;
  const std::string python = quoted(program.python);
  struct PeerCommand {
    fs::path script;
    std::string command;
    bool train;
  };
  const std::vector<PeerCommand> commands = {
      {train_script,
       python + " " + quoted(train_script.string()) + common + " --answer-tokens " +
           std::to_string(shape.answer_tokens) + " --freeze-vision" +
           (shape.name == "7b" ? " --gradient-checkpointing" : ""),
       true},
      {sample_script,
       python + " " + quoted(sample_script.string()) + common + " --new-tokens " +
           std::to_string(shape.sampled_tokens),
       false}};
  for (const PeerCommand& peer : commands) {
    notes.push_back("peer: " + peer.command);
    PERPO_LOG_INFO("bench: running the peer: ", peer.command);
    const auto [status, output] = run_command(peer.command);
    const char* seconds_key = peer.train ? " s_per_list=" : "seconds_per_list ";
    const double seconds = number_after(output, seconds_key);
    const double peak = number_after(output, peer.train ? "peak_memory_mb=" : "peak_memory_mb ");
    if (status != 0) throw peer_error(program.python, peer.script.string(), status, output);
    if (!(seconds > 0)) {
      throw perpo::runtime_error("the bench peer ", program.python, " ", peer.script.string(),
                                 " printed no figure ('", seconds_key, "<seconds>'); it printed ",
                                 printed(output));
    }
    (peer.train ? figures.train_seconds_per_list : figures.sample_seconds_per_list) = seconds;
    (peer.train ? figures.train_peak_mib : figures.sample_peak_mib) = peak;
  }
  return figures;
}

}  // namespace perpo::bench_detail
