// IoU / GIoU: hand-worked values, properties on random boxes, and the grounding aggregator.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "perpo/core/error.h"
#include "perpo/reward/aggregate.h"
#include "perpo/reward/box.h"

namespace perpo {
namespace {

TEST(Iou, HandWorked) {
  // A = [0, 0, 0.5, 0.5], B = [0.25, 0.25, 0.75, 0.75]
  // overlap 0.25 * 0.25 = 0.0625; union 0.25 + 0.25 - 0.0625 = 0.4375; IoU = 0.0625 / 0.4375 = 1/7
  Box a{0, 0, 0.5, 0.5}, b{0.25, 0.25, 0.75, 0.75};
  EXPECT_NEAR(iou(a, b), 1.0 / 7, 1e-12);
  // Hull [0, 0, 0.75, 0.75] has area 0.5625; GIoU = 1/7 - (0.5625 - 0.4375) / 0.5625
  //   = 1/7 - 2/9 = -5/63
  EXPECT_NEAR(giou(a, b), -5.0 / 63, 1e-12);

  // The interfaces.md example: answer [0.61, 0.17, 0.77, 0.53], truth [0.61, 0.1, 0.77, 0.54]
  // overlap 0.16 * 0.36 = 0.0576 = the answer's area; union = truth area 0.16 * 0.44 = 0.0704
  // IoU = 0.0576 / 0.0704 = 9/11; the answer lies inside the truth, hull = truth: GIoU = IoU
  Box answer{0.61, 0.17, 0.77, 0.53}, truth{0.61, 0.1, 0.77, 0.54};
  EXPECT_NEAR(iou(answer, truth), 9.0 / 11, 1e-12);
  EXPECT_NEAR(giou(answer, truth), 9.0 / 11, 1e-12);

  // Disjoint: [0, 0, 0.2, 0.2] and [0.6, 0.6, 1, 1]: IoU 0; union 0.04 + 0.16 = 0.2;
  // hull area 1; GIoU = 0 - (1 - 0.2) / 1 = -0.8
  Box c{0, 0, 0.2, 0.2}, d{0.6, 0.6, 1, 1};
  EXPECT_EQ(iou(c, d), 0.0);
  EXPECT_NEAR(giou(c, d), -0.8, 1e-12);

  // Touching edges share no area.
  EXPECT_EQ(iou({0, 0, 0.5, 1}, {0.5, 0, 1, 1}), 0.0);
  // Two degenerate boxes: no union, IoU 0 by convention.
  EXPECT_EQ(iou({0.5, 0.5, 0.5, 0.5}, {0.5, 0.5, 0.5, 0.5}), 0.0);
}

TEST(Iou, PropertiesOnRandomBoxes) {
  std::mt19937 rng(7);
  // Coordinates on a 0.1 grid, so identical and touching boxes occur often.
  std::uniform_int_distribution<int> grid(0, 10);
  auto random_box = [&] {
    int x1 = grid(rng), x2 = grid(rng), y1 = grid(rng), y2 = grid(rng);
    if (x1 > x2) std::swap(x1, x2);
    if (y1 > y2) std::swap(y1, y2);
    return Box{x1 / 10.0, y1 / 10.0, x2 / 10.0, y2 / 10.0};
  };
  int identical_pairs = 0;
  for (int trial = 0; trial < 100000; ++trial) {
    Box a = random_box(), b = random_box();
    double ab = iou(a, b);
    ASSERT_EQ(ab, iou(b, a));
    ASSERT_GE(ab, 0.0);
    ASSERT_LE(ab, 1.0);
    bool usable = a.area() > 0 && b.area() > 0;
    if (usable) {
      ASSERT_EQ(ab == 1.0, a == b) << format_box(a) << " vs " << format_box(b);
      ASSERT_EQ(iou(a, a), 1.0);
      identical_pairs += a == b;
    }
    double g = giou(a, b);
    ASSERT_NEAR(g, giou(b, a), 1e-15);
    ASSERT_GE(g, -1.0);
    ASSERT_LE(g, ab + 1e-15);  // GIoU never exceeds IoU
  }
  EXPECT_GT(identical_pairs, 0);  // the test saw the "== 1" side too
}

TEST(GroundingMetrics, AccuracyMeanIouUnparsable) {
  // IoUs 0.9, 0.5, 0.3 and one unparsable answer (0):
  // Acc@0.5 = 2 / 4 = 0.5 (0.5 counts: >=); mean IoU = 1.7 / 4 = 0.425; unparsable = 1 / 4
  GroundingMetrics metrics;
  metrics.add(0.9);
  metrics.add(0.5);
  metrics.add(RewardResult{0.3, "ok"});
  metrics.add(RewardResult{0.0, "no_box"});
  EXPECT_EQ(metrics.count(), 4u);
  EXPECT_DOUBLE_EQ(metrics.accuracy(), 0.5);
  EXPECT_DOUBLE_EQ(metrics.mean_iou(), 0.425);
  EXPECT_DOUBLE_EQ(metrics.unparsable(), 0.25);

  GroundingMetrics strict(0.75);  // Acc@0.75: only 0.9 passes -> 1 / 4
  for (double value : {0.9, 0.5, 0.3, 0.0}) strict.add(value);
  EXPECT_DOUBLE_EQ(strict.accuracy(), 0.25);
  EXPECT_EQ(GroundingMetrics().accuracy(), 0.0);
  // Hits {1, 0, 0, 0}: sample variance (0.75^2 + 3 * 0.25^2) / 3 = 0.25, SE sqrt(0.25 / 4).
  EXPECT_DOUBLE_EQ(strict.tallies().hits.standard_error(), 0.25);
}

TEST(MeanTally, MeanAndStandardError) {
  // 1, 2, 3, 4: mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, sample variance 5 / 3,
  // SE sqrt(5 / 3 / 4) = sqrt(5 / 12).
  MeanTally tally;
  EXPECT_EQ(tally.mean(), 0.0);
  tally.add(1);
  EXPECT_EQ(tally.standard_error(), 0.0);  // one value: no spread to measure
  for (double v : {2.0, 3.0, 4.0}) tally.add(v);
  EXPECT_EQ(tally.count(), 4u);
  EXPECT_DOUBLE_EQ(tally.mean(), 2.5);
  EXPECT_NEAR(tally.standard_error(), std::sqrt(5.0 / 12), 1e-15);
}

}  // namespace
TEST(FormatBoxIn, EachFamilysFormHandWorkedAndParsedBack) {
  const Box box{0.21, 0.4, 0.44, 0.63};
  EXPECT_EQ(format_box_in(box, BoxUnits::kNormalized), "[0.21, 0.40, 0.44, 0.63]");
  EXPECT_EQ(format_box_in(box, BoxUnits::kInfer), "[0.21, 0.40, 0.44, 0.63]");
  // 644 x 476: 0.21 * 644 = 135.24, 0.4 * 476 = 190.4, 0.44 * 644 = 283.36, 0.63 * 476 = 299.88
  EXPECT_EQ(format_box_in(box, BoxUnits::kPixels, 644, 476),
            R"({"bbox_2d": [135, 190, 283, 300]})");
  EXPECT_EQ(format_box_in(box, BoxUnits::kScale1000),
            "<|box_start|>(210,400),(440,630)<|box_end|>");
  // Halves round away from zero: 0.5 * 5 = 2.5 -> 3; a box at the origin writes 0, never -0.
  EXPECT_EQ(format_box_in({0.0, 0.0, 0.5, 0.5}, BoxUnits::kPixels, 5, 5),
            R"({"bbox_2d": [0, 0, 3, 3]})");
  EXPECT_THROW(format_box_in(box, BoxUnits::kPixels), Error);  // no frame size

  // Read back in the same units, a box moves by at most half a unit on each side.
  for (BoxUnits units : {BoxUnits::kPixels, BoxUnits::kScale1000}) {
    const auto back = parse_boxes(format_box_in(box, units, 644, 476), {644, 476, units});
    ASSERT_EQ(back.size(), 1u);
    ASSERT_EQ(back[0].note, BoxNote::kOk);
    const double half_x = units == BoxUnits::kPixels ? 0.5 / 644 : 0.5e-3;
    const double half_y = units == BoxUnits::kPixels ? 0.5 / 476 : 0.5e-3;
    EXPECT_NEAR(back[0].box.x1, box.x1, half_x);
    EXPECT_NEAR(back[0].box.y1, box.y1, half_y);
    EXPECT_NEAR(back[0].box.x2, box.x2, half_x);
    EXPECT_NEAR(back[0].box.y2, box.y2, half_y);
  }
}

}  // namespace perpo
