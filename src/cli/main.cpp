// perpo: the command line. Each subcommand lives in its own cmd_*.cpp and registers itself in
// commands.h; main only parses, dispatches and maps errors to exit codes (interfaces.md).
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>

#include "commands.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/core/signals.h"

namespace {

/// `code`, or 1 when what was printed could not be written (`perpo --version > /dev/full`).
int finish(int code) {
  errno = 0;
  std::cout.flush();
  const bool failed = std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout;
  if (failed) {
    const int saved = errno;
    std::fprintf(stderr, "perpo: error: cannot write to standard output: %s\n",
                 saved ? std::strerror(saved) : "write error");
    return code == 0 ? 1 : code;
  }
  return code;
}

int run(int argc, char** argv);

}  // namespace

int main(int argc, char** argv) {
  // Ctrl-C / SIGTERM remove temporary files and end perpo; long loops switch to a stop flag.
  perpo::install_signal_handlers(perpo::StopMode::kExit);
  return finish(run(argc, argv));
}

namespace {

int run(int argc, char** argv) {
  CLI::App app{"perpo: Perceptual Preference Optimization for multimodal LLMs (C++ / LibTorch)"};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "Print perpo, LibTorch and CUDA versions and exit");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();

  perpo::cli::CommandRegistry registry;
  perpo::cli::register_all(app, registry);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  try {
    perpo::init_logging(log_level);
    perpo::cli::set_log_level_given(app.count("--log-level") > 0);
    if (show_version) {
      std::puts(perpo::cli::version_text().c_str());
      return 0;
    }
    for (auto& command : registry.commands) {
      if (command.app->parsed()) return command.run();
    }
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const perpo::Error& e) {
    std::fprintf(stderr, "perpo: error: %s\n", e.what());
    if (!e.source_location().empty()) PERPO_LOG_DEBUG("raised at ", e.source_location());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "perpo: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace
