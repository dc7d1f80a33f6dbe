// The robustness suite: a table of bad inputs for every perpo command. Each row is a command
// line, the files it needs, the exit code it must end with and a phrase its message must hold;
// the harness (robustness_test.cpp) also checks that the row wrote nothing and left its inputs
// untouched (every file and folder under the row's folder: same kinds, sizes, contents and
// modification times before and after).
//
// Adding rows for a command: create tests/robustness/cases_<command>.cpp (one file per command,
// so rows of different commands never conflict) holding
//
//   #include "harness.h"
//   PERPO_ROBUSTNESS_CASES(sample) {
//     return {
//         {"missing_config", "sample --config {dir}/none.yaml", nullptr, 2, "does not exist"},
//         {"bad_n", "sample --config {dir}/c.yaml", [](const fs::path& dir) {
//            write_text(dir / "c.yaml", "sampling:\n  num_answers: 1\n"); },
//          2, "must be >= 2"},
//     };
//   }
//
// CMake globs the folder, so nothing else needs editing. Row names must be unique within a
// command (the test is named robustness/Robustness.Bad/<command>_<name>). In `args`, {dir} is the
// row's own empty scratch folder and {fixtures} is tests/fixtures; setup (may be nullptr) creates
// the row's inputs in {dir}. `cwd` (relative to {dir}) runs perpo in a subfolder; `stdout_to`
// sends perpo's standard output to a file such as /dev/full.
#pragma once

// Rows name only the fields they need; the rest keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace perpo::robustness {

namespace fs = std::filesystem;

struct Case {
  std::string name;                            // unique within its command, [A-Za-z0-9_]
  std::string args;                            // after `perpo`; {dir}, {fixtures} substituted
  std::function<void(const fs::path&)> setup;  // creates inputs in the row's folder (or nullptr)
  int exit_code = 2;                           // expected exit code
  std::string message;                         // a phrase the output (stdout + stderr) must hold
                                               // ({dir} substituted)
  std::string cwd;                             // optional: run in {dir}/<cwd>
  std::string stdout_to;                       // optional: standard output to this file
  std::string command;                         // filled in by the registry
  std::string env;                             // optional: "K=V ..." set for this run (launchers)
};

using CaseList = std::vector<Case>;

/// Adds a command's rows (PERPO_ROBUSTNESS_CASES does this); returns a dummy for static init.
int register_cases(const char* command, CaseList (*make)());
/// Every registered row, commands in name order.
std::vector<Case> all_cases();

// Setup helpers.
void write_text(const fs::path& path, const std::string& text);
std::string read_text(const fs::path& path);
void make_fifo(const fs::path& path);
/// A copy of the tiny LLaVA fixture checkpoint (config.json + model.safetensors) at `to`.
void copy_checkpoint(const fs::path& to);
fs::path fixtures_dir();

}  // namespace perpo::robustness

#define PERPO_ROBUSTNESS_CASES(command)                                                \
  static ::perpo::robustness::CaseList perpo_robustness_cases_##command();             \
  [[maybe_unused]] static const int perpo_robustness_registered_##command =            \
      ::perpo::robustness::register_cases(#command, perpo_robustness_cases_##command); \
  static ::perpo::robustness::CaseList perpo_robustness_cases_##command()
