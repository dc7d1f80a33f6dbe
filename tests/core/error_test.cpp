#include "perpo/core/error.h"

#include <gtest/gtest.h>

namespace perpo {
namespace {

TEST(Error, CheckThrowsWithStreamedMessageAndKind) {
  int beta = -1;
  try {
    PERPO_CHECK_INPUT(beta > 0, "loss.beta must be > 0, got ", beta);
    FAIL() << "PERPO_CHECK_INPUT did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), "loss.beta must be > 0, got -1");
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_NE(e.source_location().find("error_test.cpp:"), std::string::npos);
  }
}

TEST(Error, RuntimeCheckExitsWithOne) {
  try {
    PERPO_CHECK(1 + 1 == 3, "arithmetic is broken");
    FAIL() << "PERPO_CHECK did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 1);
    EXPECT_STREQ(e.what(), "arithmetic is broken");
  }
}

TEST(Error, PassingCheckDoesNothing) { EXPECT_NO_THROW(PERPO_CHECK(true, "never")); }

TEST(Error, HintAndContextAppearInWhat) {
  Error e = input_error("unknown reward 'iuo'");
  e.hint("did you mean 'iou'?");
  e.context("lists.jsonl:3: ");
  EXPECT_STREQ(e.what(), "lists.jsonl:3: unknown reward 'iuo' (hint: did you mean 'iou'?)");
  EXPECT_EQ(e.hint_text(), "did you mean 'iou'?");
}

}  // namespace
}  // namespace perpo
