// Robustness rows for `perpo config show`: bad YAML files and overrides.
#include "harness.h"

namespace perpo::robustness {

namespace {
// A row whose config file c.yaml holds `yaml`.
Case config_case(std::string name, std::string yaml, std::string message,
                 std::string extra_args = "") {
  return {std::move(name), "config show --config {dir}/c.yaml" + extra_args,
          [yaml](const fs::path& dir) { write_text(dir / "c.yaml", yaml); }, 2, std::move(message)};
}
}  // namespace

PERPO_ROBUSTNESS_CASES(config) {
  return {
      {"missing_file", "config show --config {dir}/none.yaml", nullptr, 2, "none.yaml"},
      {"folder_as_file", "config show --config {dir}/sub",
       [](const fs::path& dir) { fs::create_directories(dir / "sub"); }, 2, "sub"},
      {"dev_zero", "config show --config /dev/zero", nullptr, 2, "it is a character device"},
      config_case("duplicate_key", "optim:\n  lr: 1.0e-5\n  lr: 2.0e-5\n",
                  "c.yaml:3: duplicate key 'optim.lr' (first set on line 2)"),
      config_case("duplicate_section", "loss:\n  beta: 0.1\nloss:\n  beta: 0.2\n",
                  "c.yaml:3: duplicate key 'loss'"),
      config_case("duplicate_flow_key", "loss: {beta: 0.1, beta: 0.2}\n",
                  "duplicate key 'loss.beta'"),
      config_case("second_document", "loss:\n  beta: 0.1\n---\nloss:\n  beta: 0.2\n",
                  "c.yaml:3: a second YAML document"),
      config_case("unknown_key", "optim:\n  lrr: 1.0e-5\n", "did you mean 'optim.lr'?"),
      config_case("unknown_section", "optimiser:\n  lr: 1.0e-5\n", "unknown key 'optimiser'"),
      config_case("wrong_type", "train:\n  epochs: [1, 2]\n", "c.yaml:2"),
      config_case("broken_yaml", "loss: [unclosed\n", "not valid YAML"),
      config_case("top_level_list", "- a\n- b\n", "must be a mapping"),
      config_case("scalar_section", "loss: 3\n", "'loss' is a section"),
      config_case("invalid_value", "loss:\n  beta: -1\n", "'loss.beta' must be in (0, 1000]"),
      config_case("bad_override_form", "{}\n", "key=value", " no-equals-sign"),
      config_case("unknown_override_key", "{}\n", "unknown key 'optim.lrr'", " optim.lrr=1"),
      config_case("override_fails_validation", "{}\n",
                  "'sampling.num_answers' must be in [2, 4096]", " sampling.num_answers=1"),
      config_case("override_wrong_type", "{}\n", "sampling.num_answers", " sampling.num_answers=x"),
  };
}

}  // namespace perpo::robustness
