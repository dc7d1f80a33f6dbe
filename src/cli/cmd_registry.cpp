#include <algorithm>
#include <string>

#include "commands.h"
#include "perpo/config/config_io.h"
#include "perpo/core/log.h"
#include "perpo/runtime/runtime.h"

namespace perpo::cli {

void register_all(CLI::App& app, CommandRegistry& registry) {
  register_config(app, registry);
  register_score(app, registry);
  register_export(app, registry);
  register_train(app, registry);
  register_data(app, registry);
  register_sample(app, registry);
  register_logps(app, registry);
  register_eval(app, registry);
  register_demo(app, registry);
  register_bench(app, registry);
}

const CLI::Validator& whole_number_validator() {
  static const CLI::Validator validator(
      [](std::string& input) -> std::string {
        const bool digits = !input.empty() && std::all_of(input.begin(), input.end(), [](char c) {
          return c >= '0' && c <= '9';
        });
        return digits ? std::string() : "must be a whole number >= 0, got '" + input + "'";
      },
      "", "whole number >= 0");
  return validator;
}

std::string version_text() { return std::string("perpo 0.1.0\n") + runtime_summary(); }

namespace {
bool g_log_level_given = false;
}  // namespace

void set_log_level_given(bool given) { g_log_level_given = given; }

void apply_log_level(const std::string& level) {
  if (!g_log_level_given) init_logging(level);
}

Config load_command_config(const std::string& file, const std::vector<std::string>& overrides) {
  Config config = load_config(file, overrides);
  apply_log_level(config.run.log_level);
  return config;
}

}  // namespace perpo::cli
