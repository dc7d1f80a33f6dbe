// Text after the first YAML document is refused, and quickly: YAML::LoadAll (yaml-cpp 0.7) never
// returned on the config below, found by fuzz/yaml_config.cpp (its input is
// tests/fixtures/fuzz/yaml_config/load_all_hang, replayed by fuzz_replay_yaml_config).
#include <gtest/gtest.h>

#include <string>

#include "perpo/config/config.h"
#include "perpo/config/config_io.h"
#include "perpo/core/error.h"

namespace perpo {
namespace {

std::string merge_error(const std::string& yaml) {
  Config config;
  try {
    merge_yaml(config, yaml, "c.yaml");
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error());
    return e.what();
  }
  ADD_FAILURE() << "expected an error for: " << yaml;
  return "";
}

TEST(ConfigYamlDocuments, TextAfterAFlowMappingIsRefusedWithoutHanging) {
  const std::string text = merge_error("{optim: 0}, losskv_heads 0.1}}\n");
  EXPECT_NE(text.find("c.yaml:1: a second YAML document (or text after the end of the first)"),
            std::string::npos)
      << text;
}

TEST(ConfigYamlDocuments, ADocumentAfterAnEndMarkerIsNamedByItsLine) {
  const std::string text = merge_error("loss:\n  beta: 0.1\n...\nloss:\n  beta: 0.2\n");
  EXPECT_NE(text.find("c.yaml:4: a second YAML document"), std::string::npos) << text;
}

TEST(ConfigYamlDocuments, OneDocumentStillLoads) {
  Config config;
  merge_yaml(config, "---\nloss:\n  beta: 0.25\n...\n# the end\n", "c.yaml");
  EXPECT_DOUBLE_EQ(config.loss.beta, 0.25);
}

}  // namespace
}  // namespace perpo
