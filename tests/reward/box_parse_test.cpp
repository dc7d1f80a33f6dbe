// Box parsing: every accepted form, hand-worked, plus the problems it must report.
#include <gtest/gtest.h>

#include "perpo/core/error.h"
#include "perpo/reward/box.h"

namespace perpo {
namespace {

void expect_box(const BoxCandidate& candidate, double x1, double y1, double x2, double y2) {
  EXPECT_EQ(candidate.note, BoxNote::kOk);
  EXPECT_NEAR(candidate.box.x1, x1, 1e-12);
  EXPECT_NEAR(candidate.box.y1, y1, 1e-12);
  EXPECT_NEAR(candidate.box.x2, x2, 1e-12);
  EXPECT_NEAR(candidate.box.y2, y2, 1e-12);
}

TEST(BoxParse, NormalisedBracketListAnyDecimalsAndSpacing) {
  auto boxes = parse_boxes("[0.61, 0.1, 0.77, 0.54]");
  ASSERT_EQ(boxes.size(), 1u);
  expect_box(boxes[0], 0.61, 0.1, 0.77, 0.54);
  EXPECT_EQ(boxes[0].format, BoxFormat::kBracketList);

  boxes = parse_boxes("The glass is at [ 0.610,0.1000 ,  0.77 ,0.5 ] in the image.");
  ASSERT_EQ(boxes.size(), 1u);
  expect_box(boxes[0], 0.61, 0.1, 0.77, 0.5);
  EXPECT_EQ(boxes[0].offset, 16u);  // "The glass is at " is 16 bytes

  boxes = parse_boxes("[0 0.25 1 .75]");  // spaces only, integers, leading point
  ASSERT_EQ(boxes.size(), 1u);
  expect_box(boxes[0], 0.0, 0.25, 1.0, 0.75);

  boxes = parse_boxes("(0.1, 0.2, 0.3, 0.4)");  // four values in parentheses
  ASSERT_EQ(boxes.size(), 1u);
  expect_box(boxes[0], 0.1, 0.2, 0.3, 0.4);

  boxes = parse_boxes("[1e-1, 2E-1, +0.3, 4e-1]");  // exponents and a plus sign
  ASSERT_EQ(boxes.size(), 1u);
  expect_box(boxes[0], 0.1, 0.2, 0.3, 0.4);
}

TEST(BoxParse, PixelBoxesNeedTheImageSize) {
  // 640 x 480 image: 243 / 640 = 0.3796875, 40 / 480 = 1/12, 308 / 640 = 0.48125, 216 / 480 = 0.45
  BoxParseOptions options{640, 480};
  auto boxes = parse_boxes("[243, 40, 308, 216]", options);
  ASSERT_EQ(boxes.size(), 1u);
  expect_box(boxes[0], 0.3796875, 1.0 / 12, 0.48125, 0.45);

  boxes = parse_boxes("[243, 40, 308, 216]");  // no image size: cannot normalise
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_EQ(boxes[0].note, BoxNote::kOutOfRange);

  boxes = parse_boxes("[243, 40, 700, 216]", options);  // x2 = 700 > 640: outside the image
  EXPECT_EQ(boxes[0].note, BoxNote::kOutOfRange);
}

TEST(BoxParse, UnitsSayHowPlainBoxesAreRead) {
  // Qwen2.5-VL's own form, pixels of a 644 x 476 frame: 161 / 644 = 0.25, 119 / 476 = 0.25,
  // 483 / 644 = 0.75, 357 / 476 = 0.75.
  BoxParseOptions pixels{644, 476, BoxUnits::kPixels};
  auto boxes = parse_boxes(R"({"bbox_2d": [161, 119, 483, 357], "label": "glass"})", pixels);
  ASSERT_EQ(boxes.size(), 1u);
  expect_box(boxes[0], 0.25, 0.25, 0.75, 0.75);
  // A tiny box in the top-left corner is pixels too, not a normalised box (the infer rule would
  // read it as the whole image).
  boxes = parse_boxes("[0, 0, 1, 1]", pixels);
  expect_box(boxes[0], 0.0, 0.0, 1.0 / 644, 1.0 / 476);
  boxes = parse_boxes("[0, 0, 1, 1]", {644, 476, BoxUnits::kInfer});
  expect_box(boxes[0], 0.0, 0.0, 1.0, 1.0);
  boxes = parse_boxes("[161, 119, 483, 357]", {0, 0, BoxUnits::kPixels});  // no frame: unusable
  EXPECT_EQ(boxes[0].note, BoxNote::kOutOfRange);

  // Normalised units never fall back to pixels, whatever image size is known.
  boxes = parse_boxes("[161, 119, 483, 357]", {644, 476, BoxUnits::kNormalized});
  EXPECT_EQ(boxes[0].note, BoxNote::kOutOfRange);
  boxes = parse_boxes("[0.25, 0.25, 0.75, 0.75]", {644, 476, BoxUnits::kNormalized});
  expect_box(boxes[0], 0.25, 0.25, 0.75, 0.75);

  // Qwen2-VL's 0-1000: 610 / 1000 = 0.61, ...; the tagged form keeps its scale in any units.
  boxes = parse_boxes("[610, 100, 770, 540]", {0, 0, BoxUnits::kScale1000});
  expect_box(boxes[0], 0.61, 0.1, 0.77, 0.54);
  boxes = parse_boxes("<|box_start|>(610,100),(770,540)<|box_end|>", pixels);
  expect_box(boxes[0], 0.61, 0.1, 0.77, 0.54);
}

TEST(BoxParse, UnitNamesRoundTripAndUnknownOnesAreRefused) {
  for (BoxUnits units :
       {BoxUnits::kInfer, BoxUnits::kNormalized, BoxUnits::kPixels, BoxUnits::kScale1000}) {
    EXPECT_EQ(parse_box_units(box_units_name(units)), units);
  }
  EXPECT_STREQ(box_units_name(BoxUnits::kScale1000), "scale_1000");
  try {
    parse_box_units("pixel");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown box units 'pixel'"), std::string::npos)
        << e.what();
    EXPECT_NE(e.hint_text().find("pixels"), std::string::npos);
  }
}

TEST(BoxParse, CornerPairs) {
  auto boxes = parse_boxes("from (0.61,0.10),(0.77,0.54)");
  ASSERT_EQ(boxes.size(), 1u);
  expect_box(boxes[0], 0.61, 0.10, 0.77, 0.54);
  EXPECT_EQ(boxes[0].format, BoxFormat::kCornerPairs);

  // Pixels, space between the pairs: 64 / 640 = 0.1, 48 / 480 = 0.1, 320 / 640 = 0.5, 240 / 480 =
  // 0.5
  boxes = parse_boxes("(64, 48) (320, 240)", {640, 480});
  ASSERT_EQ(boxes.size(), 1u);
  expect_box(boxes[0], 0.1, 0.1, 0.5, 0.5);

  EXPECT_TRUE(parse_boxes("the point (0.5, 0.5) alone").empty());  // one pair is not a box
}

TEST(BoxParse, QwenStyleScaledTo1000) {
  // 610 / 1000 = 0.61, 100 / 1000 = 0.1, 770 / 1000 = 0.77, 540 / 1000 = 0.54
  auto boxes = parse_boxes("<|box_start|>(610,100),(770,540)<|box_end|>");
  ASSERT_EQ(boxes.size(), 1u);
  expect_box(boxes[0], 0.61, 0.1, 0.77, 0.54);
  EXPECT_EQ(boxes[0].format, BoxFormat::kScaled1000);

  boxes = parse_boxes("<box>(0,0),(1000,500)</box>");
  ASSERT_EQ(boxes.size(), 1u);
  expect_box(boxes[0], 0.0, 0.0, 1.0, 0.5);

  // Small values are still on the 0-1000 scale here: (1,1),(1,1) would be a degenerate point;
  // (1,1),(2,2) -> [0.001, 0.001, 0.002, 0.002].
  boxes = parse_boxes("<|box_start|>(1,1),(2,2)<|box_end|>");
  expect_box(boxes[0], 0.001, 0.001, 0.002, 0.002);

  boxes = parse_boxes("<|box_start|>(610,100),(1770,540)<|box_end|>");
  EXPECT_EQ(boxes[0].note, BoxNote::kOutOfRange);
}

TEST(BoxParse, SeveralBoxesInOrderAndSelection) {
  const std::string text =
      "first [0.1, 0.1, 0.2, 0.2] then [0.5, 0.5, 0.9, 0.9] and (0.0,0.0),(0.3,0.3)";
  auto boxes = parse_boxes(text);
  ASSERT_EQ(boxes.size(), 3u);
  expect_box(*select_box(boxes, BoxSelect::kFirst), 0.1, 0.1, 0.2, 0.2);
  expect_box(*select_box(boxes, BoxSelect::kLast), 0.0, 0.0, 0.3, 0.3);
  // Truth [0.5, 0.5, 1, 1]: IoU of the middle box = 0.16 / 0.25 = 0.64, the others 0.
  Box truth{0.5, 0.5, 1.0, 1.0};
  expect_box(*select_box(boxes, BoxSelect::kBest, &truth), 0.5, 0.5, 0.9, 0.9);
  EXPECT_EQ(select_box({}, BoxSelect::kFirst), nullptr);

  EXPECT_EQ(parse_box_select("best"), BoxSelect::kBest);
  EXPECT_THROW(parse_box_select("middle"), Error);
}

TEST(BoxParse, MalformedSpansOnlyDiagnose) {
  auto boxes = parse_boxes("see [1]: [0.1, 0.2, 0.3, 0.4]");
  ASSERT_EQ(boxes.size(), 2u);
  EXPECT_EQ(boxes[0].note, BoxNote::kMalformed);
  expect_box(*select_box(boxes, BoxSelect::kFirst), 0.1, 0.2, 0.3, 0.4);

  boxes = parse_boxes("[0.1, 0.2, 0.3]");
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_EQ(select_box(boxes, BoxSelect::kFirst)->note, BoxNote::kMalformed);
  EXPECT_EQ(parse_boxes("[0.1, 0.2, 0.3, 0.4, 0.5]")[0].note, BoxNote::kMalformed);

  EXPECT_TRUE(parse_boxes("no box here").empty());
  EXPECT_TRUE(parse_boxes("[a, b, c, d]").empty());
  EXPECT_TRUE(parse_boxes("[0.1, 0.2, 0.3, 0.4").empty());  // never closed
  EXPECT_TRUE(parse_boxes("[]").empty());
}

TEST(BoxParse, NestedBracketsFindTheInnerBox) {
  auto boxes = parse_boxes("[[[[0.1, 0.2, 0.3, 0.4]]]]");
  ASSERT_EQ(boxes.size(), 1u);
  expect_box(boxes[0], 0.1, 0.2, 0.3, 0.4);
}

TEST(BoxParse, SwappedCornersAreFixed) {
  auto boxes = parse_boxes("[0.77, 0.54, 0.61, 0.1]");
  ASSERT_EQ(boxes.size(), 1u);
  expect_box(boxes[0], 0.61, 0.1, 0.77, 0.54);
  EXPECT_TRUE(boxes[0].corners_swapped);
  EXPECT_FALSE(parse_boxes("[0.1, 0.1, 0.2, 0.2]")[0].corners_swapped);
}

TEST(BoxParse, NonFiniteOutOfRangeAndDegenerate) {
  EXPECT_EQ(parse_boxes("[nan, 0.1, 0.2, 0.3]")[0].note, BoxNote::kNonFinite);
  EXPECT_EQ(parse_boxes("[0.1, -inf, 0.2, 0.3]")[0].note, BoxNote::kNonFinite);
  EXPECT_EQ(parse_boxes("[0.1, 0.1, Infinity, 0.3]")[0].note, BoxNote::kNonFinite);
  EXPECT_EQ(parse_boxes("[0.1, 0.1, 1e999, 0.3]")[0].note, BoxNote::kNonFinite);  // overflow
  EXPECT_EQ(parse_boxes("[1e-999, 0.1, 0.2, 0.3]")[0].note, BoxNote::kOk);        // underflow = 0
  EXPECT_EQ(parse_boxes("[-0.1, 0.1, 0.2, 0.3]", {640, 480})[0].note, BoxNote::kOutOfRange);
  EXPECT_EQ(parse_boxes("[0.1, 0.1, 0.1, 0.3]")[0].note, BoxNote::kDegenerate);  // zero width
  EXPECT_EQ(parse_boxes("[0.1, 0.3, 0.2, 0.3]")[0].note, BoxNote::kDegenerate);  // zero height
  // Width and height 1e-200 > 0, but their product underflows to 0: IoU with itself would be 0.
  EXPECT_EQ(parse_boxes("[0, 0, 1e-200, 1e-200]")[0].note, BoxNote::kDegenerate);
  EXPECT_EQ(parse_boxes("[0, 0, 1e-150, 1e-150]")[0].note, BoxNote::kOk);  // 1e-300 is a double
  EXPECT_STREQ(box_note_name(BoxNote::kDegenerate), "degenerate_box");
  EXPECT_STREQ(box_note_name(BoxNote::kOutOfRange), "out_of_range_box");
}

TEST(BoxFormat, TwoDecimalsCanonical) {
  EXPECT_EQ(format_box({0.61, 0.1, 0.77, 0.54}), "[0.61, 0.10, 0.77, 0.54]");
  EXPECT_EQ(format_box({0.0, 1.0, 0.125, 0.3333}), "[0.00, 1.00, 0.13, 0.33]");
  EXPECT_EQ(format_box({-0.001, 0, 0.5, 0.5}), "[0.00, 0.00, 0.50, 0.50]");  // never "-0.00"
  EXPECT_EQ(format_box({0.61, 0.1, 0.77, 0.54}, 3), "[0.610, 0.100, 0.770, 0.540]");
  // Round trip: the canonical text parses back to the rounded box.
  auto boxes = parse_boxes(format_box({0.614, 0.1, 0.77, 0.536}));
  expect_box(boxes[0], 0.61, 0.10, 0.77, 0.54);
}

}  // namespace
}  // namespace perpo
