// What sample, logps and eval share before their work: the config (file <- k=v overrides), the
// threads, the model with its tokenizer (model/load.h), and the record encoder checked against it.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/config/config_io.h"
#include "perpo/core/log.h"
#include "perpo/generate/record_prompts.h"
#include "perpo/model/load.h"
#include "perpo/runtime/runtime.h"

namespace perpo::cli {

/// Flags every model command takes.
struct ModelCommandOptions {
  std::string config;
  std::vector<std::string> overrides;
  bool force = false;
};

inline void add_model_command_options(CLI::App* command, ModelCommandOptions& options) {
  command->add_option("--config,-c", options.config, "YAML config")->check(CLI::ExistingFile);
  command->add_flag("--force", options.force,
                    "write into an output folder that perpo did not make");
  command->add_option("overrides", options.overrides,
                      "key=value config overrides, e.g. run.seed=1");
}

/// The model, its tokenizer and the record encoder, ready for decoding.
struct ModelSession {
  LoadedModel loaded;
  std::unique_ptr<RecordPrompts> prompts;
};

inline ModelSession open_model(const Config& config) {
  set_threads(config.run.threads);
  ModelSession session;
  session.loaded = load_model(config);
  session.prompts =
      std::make_unique<RecordPrompts>(session.loaded.config, *session.loaded.tokenizer, config);
  PERPO_LOG_INFO(runtime_summary());
  return session;
}

}  // namespace perpo::cli
