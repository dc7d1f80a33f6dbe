// Runs the built perpo executable as a user would, for end-to-end tests (tests/cli/).
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "test_paths.h"

extern char** environ;

namespace perpo::test {

struct PerpoRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

/// `perpo <args>` through the shell; args are pasted as they are (quote paths with spaces).
/// With `cwd`, perpo runs in that folder; with `stdout_to`, its standard output goes to that file
/// (e.g. "/dev/full") and `output` holds stderr only. `env` ("K=V K2=V2") is set for perpo alone.
inline PerpoRun run_perpo(const std::string& args, const std::string& cwd = "",
                          const std::string& stdout_to = "", const std::string& env = "") {
  std::string command = std::string(kPerpoExe) + " " + args + " 2>&1";
  if (!env.empty()) command = env + " " + command;
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

/// Starts `perpo <args...>` without waiting (stdout and stderr to `log`); returns its pid, -1
/// when it could not start. For tests that signal or kill a running perpo. `env` ("K=V") is added
/// to (or replaces in) this process's environment.
inline pid_t spawn_perpo(const std::vector<std::string>& args, const std::string& log,
                         const std::vector<std::string>& env = {}) {
  std::vector<std::string> all = {kPerpoExe};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<std::string> vars = env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string var = *e;
    bool replaced = false;
    for (const std::string& v : env) replaced |= var.rfind(v.substr(0, v.find('=') + 1), 0) == 0;
    if (!replaced) vars.push_back(var);
  }
  std::vector<char*> envp;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data()) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

}  // namespace perpo::test
