// StageMark (demo/pipeline_stages.h): a stage is reused when its done.json holds the same
// settings; a config inside them is compared by its values, not by its YAML text, so a reworded
// comment of a config key keeps finished stages, and a changed value runs them again.
#include <gtest/gtest.h>

#include <string>

#include "perpo/config/config_io.h"
#include "perpo/demo/pipeline_stages.h"
#include "test_util.h"

namespace perpo {
namespace {

// The dump with every comment reworded (what an older perpo with other help texts wrote).
std::string reworded(const std::string& yaml) {
  std::string out;
  std::size_t start = 0;
  while (start < yaml.size()) {
    std::size_t end = yaml.find('\n', start);
    if (end == std::string::npos) end = yaml.size();
    std::string line = yaml.substr(start, end - start);
    const std::size_t hash = line.find("  # ");
    if (hash != std::string::npos) line = line.substr(0, hash) + "  # an older comment";
    out += line + "\n";
    start = end + 1;
  }
  return out;
}

TEST(StageMark, AConfigIsComparedByItsValuesNotItsComments) {
  const auto dir = test::fresh_scratch_dir("demo", "stage_mark");
  Config config;
  config.optim.lr = 2e-3;
  const std::string yaml = dump_config(config);
  ASSERT_NE(reworded(yaml), yaml);

  StageMark(dir, {{"config", reworded(yaml)}, {"steps", 10}}).finish(1.5);
  EXPECT_TRUE(StageMark(dir, {{"config", yaml}, {"steps", 10}}).done());
  // Nested (the eval stage keeps the model stage's settings).
  StageMark(dir, {{"model", {{"config", reworded(yaml)}}}}).finish(1.0);
  EXPECT_TRUE(StageMark(dir, {{"model", {{"config", yaml}}}}).done());

  // Another value, another setting beside the config, or a missing key: run again.
  Config other = config;
  other.optim.lr = 1e-3;
  StageMark(dir, {{"config", reworded(yaml)}, {"steps", 10}}).finish(1.5);
  EXPECT_FALSE(StageMark(dir, {{"config", dump_config(other)}, {"steps", 10}}).done());
  EXPECT_FALSE(StageMark(dir, {{"config", yaml}, {"steps", 11}}).done());
  EXPECT_FALSE(StageMark(dir, {{"config", yaml}}).done());
  // A config that no longer parses (e.g. a key this perpo does not know): run again.
  StageMark(dir, {{"config", yaml + "nonsense_key: 1\n"}, {"steps", 10}}).finish(1.5);
  EXPECT_FALSE(StageMark(dir, {{"config", yaml}, {"steps", 10}}).done());
}

}  // namespace
}  // namespace perpo
