// Config <-> YAML: loading with type checks and unknown-key suggestions, `a.b.c=value`
// overrides, validation with fix hints, and the commented dump of the resolved config.
//
//   perpo::Config config = perpo::load_config("configs/demo.yaml", {"optim.lr=1e-5"});
//   std::string yaml = perpo::dump_config(config);        // load_config(yaml) gives it back
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "perpo/config/config.h"

namespace perpo {

/// Defaults <- file (if non-empty) <- overrides, then validate(). Errors are perpo::Error (input)
/// naming the file, line and key, with a hint ("did you mean 'optim.lr'?").
Config load_config(const std::filesystem::path& file,
                   const std::vector<std::string>& overrides = {});

/// Merges YAML text into `config`. `source` names the text in error messages.
void merge_yaml(Config& config, const std::string& yaml_text, const std::string& source);

/// Applies one `a.b.c=value` override; the value is read as YAML (`x.list=[1, 2]`, `x.s=""`).
void apply_override(Config& config, const std::string& assignment);

/// Checks values and combinations; throws perpo::Error (input) with a hint on the first problem.
void validate(const Config& config);

/// The config as YAML, every key with its comment; parsing it back gives an equal config.
std::string dump_config(const Config& config);

/// Every settable key, dotted ("optim.lr"), in declaration order.
std::vector<std::string> config_keys();

/// True when both configs hold the same values (compares every field).
bool configs_equal(const Config& a, const Config& b);

}  // namespace perpo
