// The reward functions, their notes, the registry and the config -> options mapping.
#include <gtest/gtest.h>

#include "perpo/core/error.h"
#include "perpo/reward/reward.h"
#include "perpo/reward/reward_config.h"

namespace perpo {
namespace {

const std::string kTruth = "[0.61, 0.1, 0.77, 0.54]";

TEST(RewardIou, ScoresTheSelectedBox) {
  // Answer inside the truth: IoU = 0.0576 / 0.0704 = 9/11 (see box_geometry_test).
  RewardResult r = reward_iou("[0.61, 0.17, 0.77, 0.53]", kTruth, {});
  EXPECT_NEAR(r.score, 9.0 / 11, 1e-12);
  EXPECT_EQ(r.note, "ok");
  EXPECT_DOUBLE_EQ(reward_iou("<|box_start|>(610,100),(770,540)<|box_end|>", kTruth, {}).score,
                   1.0);

  // Two boxes: the first is the truth itself, the second is disjoint from it.
  const std::string two = "[0.61, 0.1, 0.77, 0.54] or [0.0, 0.0, 0.1, 0.05]";
  RewardOptions options;
  EXPECT_DOUBLE_EQ(reward_iou(two, kTruth, options).score, 1.0);
  options.box_select = BoxSelect::kLast;
  EXPECT_DOUBLE_EQ(reward_iou(two, kTruth, options).score, 0.0);
  options.box_select = BoxSelect::kBest;
  EXPECT_DOUBLE_EQ(reward_iou(two, kTruth, options).score, 1.0);
}

TEST(RewardIou, NotesForUnusableAnswers) {
  EXPECT_EQ(reward_iou("", kTruth, {}).note, "empty_answer");
  EXPECT_EQ(reward_iou("  \n", kTruth, {}).note, "empty_answer");
  EXPECT_EQ(reward_iou("I cannot see it.", kTruth, {}).note, "no_box");
  EXPECT_EQ(reward_iou("[0.1, 0.2]", kTruth, {}).note, "malformed_box");
  EXPECT_EQ(reward_iou("[nan, 0.1, 0.2, 0.3]", kTruth, {}).note, "non_finite_box");
  EXPECT_EQ(reward_iou("[10, 10, 20, 20]", kTruth, {}).note, "out_of_range_box");
  EXPECT_EQ(reward_iou("[0.2, 0.2, 0.2, 0.3]", kTruth, {}).note, "degenerate_box");
  EXPECT_EQ(reward_iou("[0.1, 0.1, 0.2, 0.2]", "no box", {}).note, "bad_ground_truth");
  for (const char* answer : {"", "x", "[0.1, 0.2]", "[nan, 0.1, 0.2, 0.3]"}) {
    EXPECT_EQ(reward_iou(answer, kTruth, {}).score, 0.0) << answer;
  }
  // Pixel boxes work once the image size is known: 640 x 480, [390.4, 48, 492.8, 259.2] is
  // [0.61, 0.1, 0.77, 0.54] (390.4 / 640 = 0.61, 48 / 480 = 0.1, 492.8 / 640 = 0.77, 259.2 / 480 =
  // 0.54)
  RewardOptions options;
  options.box_parse = {640, 480};
  EXPECT_NEAR(reward_iou("[390.4, 48, 492.8, 259.2]", kTruth, options).score, 1.0, 1e-12);
}

TEST(RewardGiou, MapsToUnitInterval) {
  // Disjoint [0, 0, 0.2, 0.2] vs [0.6, 0.6, 1, 1]: GIoU -0.8 -> (−0.8 + 1) / 2 = 0.1
  EXPECT_NEAR(reward_giou("[0, 0, 0.2, 0.2]", "[0.6, 0.6, 1, 1]", {}).score, 0.1, 1e-12);
  EXPECT_NEAR(reward_giou(kTruth, kTruth, {}).score, 1.0, 1e-12);
  EXPECT_EQ(reward_giou("nothing", kTruth, {}).note, "no_box");
}

TEST(RewardOcrEdit, OneMinusNormalizedDistance) {
  // kitten vs sitting: 1 - 3/7 = 4/7
  EXPECT_DOUBLE_EQ(reward_ocr_edit("kitten", "sitting", {}).score, 4.0 / 7);
  // "Hello" vs "hello": one substitution in 5 -> 0.8; lowercase on -> 1
  EXPECT_DOUBLE_EQ(reward_ocr_edit("Hello", "hello", {}).score, 0.8);
  RewardOptions options;
  options.lowercase = true;
  EXPECT_DOUBLE_EQ(reward_ocr_edit("Hello", "hello", options).score, 1.0);
  // "a  b" vs "a b": one deletion in 4 -> 0.75; whitespace collapsed -> 1
  EXPECT_DOUBLE_EQ(reward_ocr_edit("a  b", "a b", {}).score, 0.75);
  options.normalize_whitespace = true;
  EXPECT_DOUBLE_EQ(reward_ocr_edit(" a \n b ", "a b", options).score, 1.0);
  // Multi-byte: "café" vs "cafe" is 1 edit in 4 code points -> 0.75 (bytes would say 2 in 5)
  EXPECT_DOUBLE_EQ(reward_ocr_edit("caf\xC3\xA9", "cafe", {}).score, 0.75);
  RewardResult empty = reward_ocr_edit("", "text", {});
  EXPECT_EQ(empty.score, 0.0);
  EXPECT_EQ(empty.note, "empty_answer");
  EXPECT_EQ(reward_ocr_edit("", "", {}).score, 1.0);
}

TEST(RewardExactMatch, TrimsAndOptionallyNormalizes) {
  EXPECT_EQ(reward_exact_match(" Paris\n", "Paris", {}).score, 1.0);
  EXPECT_EQ(reward_exact_match("paris", "Paris", {}).score, 0.0);
  EXPECT_EQ(reward_exact_match("New  York", "New York", {}).score, 0.0);
  RewardOptions options;
  options.lowercase = true;
  options.normalize_whitespace = true;
  EXPECT_EQ(reward_exact_match("paris", "Paris", options).score, 1.0);
  EXPECT_EQ(reward_exact_match("New  York", "new york", options).score, 1.0);
  EXPECT_EQ(reward_exact_match("", "Paris", {}).note, "empty_answer");
}

TEST(RewardNumeric, FirstLastBestAndTolerance) {
  EXPECT_EQ(reward_numeric("The answer is 42.", "42", {}).score, 1.0);
  EXPECT_EQ(reward_numeric("about 41.9", "42", {}).score, 0.0);
  EXPECT_EQ(reward_numeric("42.00000001", "42", {}).score, 1.0);  // |diff| 1e-8 <= 1e-6 * 42
  EXPECT_EQ(reward_numeric("-3.5e2 degrees", "-350", {}).score, 1.0);
  RewardOptions options;
  EXPECT_EQ(reward_numeric("3 apples and 5 pears", "5", options).score, 0.0);  // first: 3
  options.box_select = BoxSelect::kLast;
  EXPECT_EQ(reward_numeric("3 apples and 5 pears", "5", options).score, 1.0);
  options.box_select = BoxSelect::kBest;
  EXPECT_EQ(reward_numeric("5 pears, 3 apples", "3", options).score, 1.0);
  EXPECT_EQ(reward_numeric("no idea", "5", {}).note, "no_number");
  EXPECT_EQ(reward_numeric("5", "five", {}).note, "bad_ground_truth");
  EXPECT_EQ(reward_numeric("", "5", {}).note, "empty_answer");
}

TEST(RewardRegistry, NamesMatchTheConfigValidation) {
  // src/config/validate.cpp accepts exactly these names for reward.name.
  EXPECT_EQ(reward_names(),
            (std::vector<std::string>{"iou", "giou", "ocr_edit", "exact_match", "numeric"}));
  EXPECT_EQ(find_reward("ocr_edit").score, &reward_ocr_edit);
  try {
    find_reward("iuo");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error());
    EXPECT_NE(std::string(e.what()).find("did you mean 'iou'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(default_reward_for_task("grounding"), "iou");
  EXPECT_EQ(default_reward_for_task("ocr"), "ocr_edit");
  EXPECT_THROW(default_reward_for_task("vqa"), Error);
}

TEST(RewardConfig, BuildsOptions) {
  perpo::RewardConfig config;
  config.box_select = "last";
  config.lowercase = true;
  config.normalize_whitespace = true;
  RewardOptions options = reward_options_from(config);
  EXPECT_EQ(options.box_select, BoxSelect::kLast);
  EXPECT_TRUE(options.lowercase);
  EXPECT_TRUE(options.normalize_whitespace);
  config.box_select = "middle";
  EXPECT_THROW(reward_options_from(config), Error);
}

TEST(RewardConfig, BoxFormatAutoIsTheInferRuleWithoutAModel) {
  perpo::RewardConfig config;
  EXPECT_EQ(config.box_format, "auto");
  EXPECT_EQ(reward_options_from(config).box_parse.units, BoxUnits::kInfer);
  config.box_format = "pixels";
  EXPECT_EQ(reward_options_from(config).box_parse.units, BoxUnits::kPixels);
  config.box_format = "scale_1000";
  EXPECT_EQ(reward_options_from(config).box_parse.units, BoxUnits::kScale1000);
}

TEST(RewardIou, AnswersInTheModelsUnitsTheTruthNormalised) {
  RewardOptions options;
  options.box_parse = {644, 476, BoxUnits::kPixels};
  // 161 / 644 = 0.25 ... : the same box as the truth.
  EXPECT_DOUBLE_EQ(
      reward_iou(R"({"bbox_2d": [161, 119, 483, 357]})", "[0.25, 0.25, 0.75, 0.75]", options).score,
      1.0);
  // The truth is read as the dataset writes it (normalised), not in the answers' pixels:
  // [0, 0, 1, 1] is the whole image, which the answer covers a quarter of.
  EXPECT_DOUBLE_EQ(
      reward_iou(R"({"bbox_2d": [161, 119, 483, 357]})", "[0, 0, 1, 1]", options).score, 0.25);
  // The same answer read as normalised is out of range, not a silent wrong score.
  options.box_parse.units = BoxUnits::kNormalized;
  const RewardResult wrong =
      reward_iou(R"({"bbox_2d": [161, 119, 483, 357]})", "[0.25, 0.25, 0.75, 0.75]", options);
  EXPECT_EQ(wrong.score, 0.0);
  EXPECT_EQ(wrong.note, "out_of_range_box");
  // check_ground_truth reads the truth normalised in any units.
  options.box_parse.units = BoxUnits::kPixels;
  EXPECT_NO_THROW(check_ground_truth(find_reward("iou"), "[0.25, 0.25, 0.75, 0.75]", options, "r"));
}

}  // namespace
}  // namespace perpo
