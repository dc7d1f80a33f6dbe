// Subcommand registry of the perpo executable. A subcommand is a function that adds its CLI11
// subcommand and options to the app and returns the callable that runs it (returning the exit
// code). Add one by writing cmd_<name>.cpp with `void register_<name>(CLI::App&, CommandRegistry&)`
// and listing it in register_all (cmd_registry.cpp).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include "perpo/config/config.h"

#include <string>
#include <vector>

namespace perpo::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

struct CommandRegistry {
  std::vector<Command> commands;
  void add(CLI::App* app, std::function<int()> run) { commands.push_back({app, std::move(run)}); }
};

void register_all(CLI::App& app, CommandRegistry& registry);

/// A check for unsigned options (seeds, indices): CLI11 reads a uint64 with strtoull, which turns
/// "-1" into 2^64 - 1, so only digits are taken ("must be a whole number >= 0, got '-1'").
const CLI::Validator& whole_number_validator();
std::string version_text();

/// The command's config (load_config: defaults <- file <- overrides) with its run.log_level
/// applied, unless --log-level was given (the flag wins).
Config load_command_config(const std::string& file, const std::vector<std::string>& overrides);
/// main(): whether --log-level was on the command line.
void set_log_level_given(bool given);
/// The console's log level of a command that has no config of its own, unless --log-level was
/// given (the flag wins).
void apply_log_level(const std::string& level);

// One per cmd_*.cpp.
void register_config(CLI::App& app, CommandRegistry& registry);
void register_score(CLI::App& app, CommandRegistry& registry);
void register_export(CLI::App& app, CommandRegistry& registry);
void register_train(CLI::App& app, CommandRegistry& registry);
void register_data(CLI::App& app, CommandRegistry& registry);
void register_sample(CLI::App& app, CommandRegistry& registry);
void register_logps(CLI::App& app, CommandRegistry& registry);
void register_eval(CLI::App& app, CommandRegistry& registry);
void register_demo(CLI::App& app, CommandRegistry& registry);
void register_bench(CLI::App& app, CommandRegistry& registry);

}  // namespace perpo::cli
