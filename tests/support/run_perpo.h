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
inline PerpoRun run_perpo(const std::string& args) {
  std::string command = std::string(kPerpoExe) + " " + args + " 2>&1";
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
