#include <gtest/gtest.h>

#include "perpo/core/progress.h"
#include "perpo/core/strings.h"

namespace perpo {
namespace {

TEST(Strings, EditDistanceHandWorked) {
  // kitten -> sitten (substitute k/s) -> sittin (e/i) -> sitting (insert g): 3
  EXPECT_EQ(edit_distance_bytes("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance_bytes("", "abc"), 3u);
  EXPECT_EQ(edit_distance_bytes("lr", "lr"), 0u);
  EXPECT_EQ(edit_distance_bytes("lrr", "lr"), 1u);
}

TEST(Strings, ClosestMatchOnlyForPlausibleTypos) {
  std::vector<std::string> keys = {"optim.lr", "optim.eps", "train.epochs"};
  EXPECT_EQ(closest_match("optim.lrr", keys).value(), "optim.lr");
  EXPECT_EQ(closest_match("train.epoch", keys).value(), "train.epochs");
  EXPECT_FALSE(closest_match("completely.different", keys).has_value());
}

TEST(Strings, SplitJoinTrim) {
  EXPECT_EQ(split("a.b..c", '.'), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(join({"a", "b", "c"}, ", "), "a, b, c");
  EXPECT_EQ(trim("  x y \n"), "x y");
  EXPECT_TRUE(starts_with("cuda:0", "cuda"));
  EXPECT_TRUE(ends_with("model.safetensors", ".safetensors"));
  EXPECT_FALSE(ends_with("a", "abc"));
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(format_duration(12.4), "12s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(3720), "1h02m");
}

TEST(Progress, RendersCountsAndIsQuietWhenAskedTo) {
  ::setenv("PERPO_PROGRESS", "0", 1);
  Progress bar(10, "sampling", "lists");
  EXPECT_FALSE(bar.enabled());
  bar.advance(4);
  std::string line = bar.render();
  EXPECT_NE(line.find("sampling"), std::string::npos);
  EXPECT_NE(line.find("4/10 lists"), std::string::npos);
  EXPECT_NE(line.find("40%"), std::string::npos);
  EXPECT_EQ(bar.done(), 4);
}

}  // namespace
}  // namespace perpo
