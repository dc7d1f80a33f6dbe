// perpo config show --config F [k.k=v ...]: the resolved configuration as YAML.
#include <cstdio>

#include "commands.h"
#include "perpo/config/config_io.h"

namespace perpo::cli {

void register_config(CLI::App& app, CommandRegistry& registry) {
  auto* config_cmd = app.add_subcommand("config", "Inspect configuration files");
  config_cmd->require_subcommand(1);
  auto* show = config_cmd->add_subcommand(
      "show", "Print the resolved configuration (defaults <- file <- overrides) as YAML");
  struct Options {
    std::string file;
    std::vector<std::string> overrides;
  };
  auto options = std::make_shared<Options>();
  show->add_option("--config,-c", options->file, "YAML config file (optional: defaults only)")
      ->check(CLI::ExistingFile);
  show->add_option("overrides", options->overrides, "key=value overrides, e.g. optim.lr=1e-5");
  registry.add(show, [options] {
    Config config = load_command_config(options->file, options->overrides);
    std::fputs(dump_config(config, /*every_section=*/true).c_str(), stdout);
    return 0;
  });
}

}  // namespace perpo::cli
