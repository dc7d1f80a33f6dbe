// Runs the built perpo executable as a user would, for end-to-end tests (tests/cli/).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "test_paths.h"

namespace perpo::test {

struct PerpoRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

/// `perpo <args>` through the shell; args are pasted as they are (quote paths with spaces).
/// With `cwd`, perpo runs in that folder; with `stdout_to`, its standard output goes to that file
/// (e.g. "/dev/full") and `output` holds stderr only.
inline PerpoRun run_perpo(const std::string& args, const std::string& cwd = "",
                          const std::string& stdout_to = "") {
  std::string command = std::string(kPerpoExe) + " " + args + " 2>&1";
  if (!stdout_to.empty()) command += " >'" + stdout_to + "'";
  if (!cwd.empty()) command = "cd '" + cwd + "' && " + command;
  PerpoRun result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe)) result.output += buffer.data();
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace perpo::test
