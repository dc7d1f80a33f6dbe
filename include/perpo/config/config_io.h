// Config <-> YAML: loading with type checks and unknown-key suggestions, `a.b.c=value`
// overrides, validation with fix hints, and the commented dump of the resolved config.
//
//   perpo::Config config = perpo::load_config("configs/demo/base.yaml", {"optim.lr=1e-5"});
//   std::string yaml = perpo::dump_config(config);        // load_config(yaml) gives it back
#pragma once

#include <filesystem>
#include <map>
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

/// The config as YAML, every key with its comment; parsing it back gives an equal config. The
/// demo: section (perpo demo's plan) is left out while it is at its defaults, unless
/// `every_section` (perpo config show).
std::string dump_config(const Config& config, bool every_section = false);

/// Every config key with its value as text ("optim.lr" -> "5e-06").
std::map<std::string, std::string> flatten_config(const Config& config);

/// A numeric key and its values (one, or a list's), for the range table of validate().
struct NumericField {
  std::string key;             // "optim.lr"
  std::vector<double> values;  // as double (exact for every int the table allows)
  bool integer = false;        // an int / uint64 key
};
/// Every numeric key (int, uint64, double, list of doubles) of `config`, in declaration order.
std::vector<NumericField> numeric_fields(const Config& config);

/// The range of one numeric key: every value must be finite and in it (validate()).
struct NumberRange {
  const char* key;
  double min;
  double max;
  bool min_open = false;  // (min, ...: min itself is refused
  bool max_open = false;  // ..., max): max itself is refused
  const char* hint = "";  // what a sensible value looks like
};
/// The numeric-settings table: every numeric key's finite range, in one place (validate.cpp).
/// A test checks that every numeric key of Config has a row.
const std::vector<NumberRange>& number_ranges();

/// Every settable key, dotted ("optim.lr"), in declaration order.
std::vector<std::string> config_keys();

/// True when both configs hold the same values (compares every field).
bool configs_equal(const Config& a, const Config& b);

}  // namespace perpo
