// Log levels: every level that --log-level's help and run.log_level name is accepted; a log
// file keeps info and above under a quieter console.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "test_util.h"

namespace perpo {
namespace {

TEST(Logging, EveryDocumentedLevelIsAccepted) {
  for (const char* level : {"trace", "debug", "info", "warn", "warning", "error", "off"}) {
    EXPECT_NO_THROW(init_logging(level)) << level;
  }
  EXPECT_THROW(init_logging("loud"), Error);
  init_logging("info");
}

TEST(Logging, ALogFileKeepsInfoUnderAWarnConsole) {
  const auto file = test::fresh_scratch_dir("core", "log_levels") / "log.txt";
  init_logging("warn");
  EXPECT_FALSE(log_enabled(LogLevel::kInfo));  // the console alone: info is not even formatted
  add_log_file(file);
  EXPECT_TRUE(log_enabled(LogLevel::kInfo));
  EXPECT_FALSE(log_enabled(LogLevel::kDebug));
  PERPO_LOG_INFO("the run's record");
  PERPO_LOG_DEBUG("too fine");
  PERPO_LOG_WARN("a warning");
  close_log_file();
  EXPECT_FALSE(log_enabled(LogLevel::kInfo));
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("[info] the run's record"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("[warning] a warning"), std::string::npos) << text.str();
  EXPECT_EQ(text.str().find("too fine"), std::string::npos) << text.str();
  // A more verbose console takes the file along.
  init_logging("debug");
  add_log_file(file);
  EXPECT_TRUE(log_enabled(LogLevel::kDebug));
  close_log_file();
  init_logging("info");
}

}  // namespace
}  // namespace perpo
