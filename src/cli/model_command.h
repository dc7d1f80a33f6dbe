// What sample, logps and eval share before their work: the config (file <- k=v overrides), the
// threads, the model with its tokenizer (model/load.h), and the record encoder checked against it.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>
#include <set>
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

/// What every model command reads besides its data: the --config file, model.path and
/// tokenizer.path (interfaces.md: an input is never an output, with or without --force).
inline std::vector<std::filesystem::path> config_inputs(const Config& config,
                                                        const std::string& config_file) {
  std::vector<std::filesystem::path> inputs;
  for (const std::string& input : {config_file, config.model.path, config.tokenizer.path}) {
    if (!input.empty()) inputs.emplace_back(input);
  }
  return inputs;
}

/// Adds the image files of `records` to `inputs` (each once).
inline void add_image_inputs(std::vector<std::filesystem::path>& inputs,
                             const std::vector<DatasetRecord>& records) {
  std::set<std::filesystem::path> seen;
  for (const DatasetRecord& record : records) {
    if (!record.image.empty() && seen.insert(record.image_path).second) {
      inputs.push_back(record.image_path);
    }
  }
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
      std::make_unique<RecordPrompts>(*session.loaded.model, *session.loaded.tokenizer, config);
  PERPO_LOG_INFO(runtime_summary());
  return session;
}

}  // namespace perpo::cli
