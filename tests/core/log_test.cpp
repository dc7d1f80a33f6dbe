// Log levels: every level that --log-level's help and run.log_level name is accepted.
#include <gtest/gtest.h>

#include "perpo/core/error.h"
#include "perpo/core/log.h"

namespace perpo {
namespace {

TEST(Logging, EveryDocumentedLevelIsAccepted) {
  for (const char* level : {"trace", "debug", "info", "warn", "warning", "error", "off"}) {
    EXPECT_NO_THROW(init_logging(level)) << level;
  }
  EXPECT_THROW(init_logging("loud"), Error);
  init_logging("info");
}

}  // namespace
}  // namespace perpo
