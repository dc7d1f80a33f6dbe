// Hand-worked tests of the preprocessing steps: padding geometry, resize taps, crop, normalisation.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "perpo/core/error.h"
#include "perpo/image/image.h"
#include "perpo/image/transforms.h"

namespace perpo {
namespace {

RgbImage make_image(int width, int height, std::vector<std::uint8_t> pixels) {
  RgbImage image;
  image.width = width;
  image.height = height;
  image.pixels = std::move(pixels);
  return image;
}

/// Pixel (x, y) as {r, g, b}.
std::vector<int> pixel(const RgbImage& image, int x, int y) {
  const std::size_t at = (static_cast<std::size_t>(y) * image.width + x) * 3;
  return {image.pixels[at], image.pixels[at + 1], image.pixels[at + 2]};
}

TEST(ImageTransforms, PadColourTruncatesLikeLlava) {
  // int(0.48145466 * 255) = int(122.77) = 122; int(116.75) = 116; int(104.09) = 104.
  const auto colour = pad_colour({0.48145466, 0.4578275, 0.40821073});
  EXPECT_EQ(colour[0], 122);
  EXPECT_EQ(colour[1], 116);
  EXPECT_EQ(colour[2], 104);
}

TEST(ImageTransforms, ExpandToSquareWideImageGoesOnTopRowWhenOffsetRoundsDown) {
  // 2x1 -> 2x2: top offset (2 - 1) // 2 = 0, so the image is row 0 and row 1 is background.
  const RgbImage wide = make_image(2, 1, {1, 2, 3, 4, 5, 6});
  const RgbImage square = expand_to_square(wide, {122, 116, 104});
  ASSERT_EQ(square.width, 2);
  ASSERT_EQ(square.height, 2);
  EXPECT_EQ(pixel(square, 0, 0), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(pixel(square, 1, 0), (std::vector<int>{4, 5, 6}));
  EXPECT_EQ(pixel(square, 0, 1), (std::vector<int>{122, 116, 104}));
  EXPECT_EQ(pixel(square, 1, 1), (std::vector<int>{122, 116, 104}));
}

TEST(ImageTransforms, ExpandToSquareCentresWithFlooredOffsets) {
  // 3x1 -> 3x3: top = (3 - 1) // 2 = 1 (middle row). 1x4 -> 4x4: left = (4 - 1) // 2 = 1.
  const RgbImage wide = make_image(3, 1, {9, 9, 9, 8, 8, 8, 7, 7, 7});
  const RgbImage square = expand_to_square(wide, {0, 0, 0});
  ASSERT_EQ(square.width, 3);
  EXPECT_EQ(pixel(square, 0, 0), (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(pixel(square, 0, 1), (std::vector<int>{9, 9, 9}));
  EXPECT_EQ(pixel(square, 2, 1), (std::vector<int>{7, 7, 7}));
  EXPECT_EQ(pixel(square, 2, 2), (std::vector<int>{0, 0, 0}));

  const RgbImage tall = make_image(1, 4, std::vector<std::uint8_t>(12, 200));
  const RgbImage tall_square = expand_to_square(tall, {1, 2, 3});
  ASSERT_EQ(tall_square.width, 4);
  ASSERT_EQ(tall_square.height, 4);
  for (int y = 0; y < 4; ++y) {
    EXPECT_EQ(pixel(tall_square, 0, y), (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(pixel(tall_square, 1, y), (std::vector<int>{200, 200, 200}));
    EXPECT_EQ(pixel(tall_square, 2, y), (std::vector<int>{1, 2, 3}));
  }
}

TEST(ImageTransforms, ShortestEdgeSizeTruncatesTheLongEdge) {
  // 640x480 -> short 336, long int(336 * 640 / 480) = int(448.0) = 448.
  EXPECT_EQ(shortest_edge_size(640, 480, 336), (std::array<int, 2>{448, 336}));
  // 50x70 -> short 32, long int(32 * 70 / 50) = int(44.8) = 44 (truncated, not rounded).
  EXPECT_EQ(shortest_edge_size(50, 70, 32), (std::array<int, 2>{32, 44}));
  EXPECT_EQ(shortest_edge_size(5, 5, 3), (std::array<int, 2>{3, 3}));
}

TEST(ImageTransforms, ResizeUpscaleHandWorkedTaps) {
  // 2x1 grey (100, 200) -> 4x1. scale = 0.5, kernel not stretched, support 2.
  // Output 0: centre 0.25, inputs 0..1 at distances 0.25 and 1.25:
  //   cubic(0.25) = (1.5*0.25 - 2.5)*0.0625 + 1 = 0.8671875
  //   cubic(1.25) = (((1.25 - 5)*1.25 + 8)*1.25 - 4)*(-0.5) = -0.0703125
  //   normalised by their sum 0.796875: 1.0882353, -0.0882353
  //   100*1.0882353 - 200*0.0882353 = 91.18 -> rounded down by the fixed-point rounding: 91
  //   (+0.5 then floor: 91.68 -> 91).
  // Output 1: centre 0.75, distances 0.25 and 0.75: cubic(0.75) = 0.2265625, sum 1.09375,
  //   weights 0.7928571, 0.2071429: 79.29 + 41.43 = 120.71 (+0.5 -> 121.21) -> 121.
  // Outputs 2 and 3 mirror them: 20.71 + 158.57 = 179.29 -> 179; 217.65 - 8.82 = 208.82 -> 209.
  // Pillow 13's Image.resize((4, 1), BICUBIC) gives the same 91, 121, 179, 209.
  const RgbImage image = make_image(2, 1, {100, 100, 100, 200, 200, 200});
  const RgbImage resized = resize_bicubic(image, 4, 1);
  ASSERT_EQ(resized.width, 4);
  ASSERT_EQ(resized.height, 1);
  const int expected[4] = {91, 121, 179, 209};
  for (int x = 0; x < 4; ++x) {
    EXPECT_EQ(pixel(resized, x, 0), (std::vector<int>(3, expected[x]))) << "x=" << x;
  }
  // The same along the vertical axis (the second pass): 1x2 -> 1x4.
  const RgbImage column = make_image(1, 2, {100, 100, 100, 200, 200, 200});
  const RgbImage tall = resize_bicubic(column, 1, 4);
  ASSERT_EQ(tall.height, 4);
  for (int y = 0; y < 4; ++y) {
    EXPECT_EQ(pixel(tall, 0, y), (std::vector<int>(3, expected[y]))) << "y=" << y;
  }
}

TEST(ImageTransforms, ResizeDownscaleAveragesWithStretchedKernel) {
  // 2x1 -> 1x1: scale 2, kernel stretched 2x (support 4). Centre 1.0; both inputs at distance
  // 0.5, i.e. 0.25 in kernel units, so equal weights 0.5 each = 2^21 in fixed point.
  // Value = (2^21 + (a + b) * 2^21) >> 22 = floor((a + b + 1) / 2):
  //   (10 + 21 + 1) / 2 = 16, (0 + 255 + 1) / 2 = 128, (0 + 0 + 1) / 2 = 0.
  const RgbImage image = make_image(2, 1, {10, 0, 0, 21, 255, 0});
  const RgbImage resized = resize_bicubic(image, 1, 1);
  EXPECT_EQ(pixel(resized, 0, 0), (std::vector<int>{16, 128, 0}));
}

TEST(ImageTransforms, ResizeDownscaleStretchesTheKernelByTheScale) {
  // 4x1 (0, 100, 200, 0) -> 1x1: scale 4, centre 2.0, inputs at distances 1.5, 0.5, 0.5, 1.5.
  // Antialiased (Pillow): kernel stretched 4x, so it is evaluated at 0.375 and 0.125:
  //   cubic(0.375) = (1.5*0.375 - 2.5)*0.140625 + 1 = 0.7275391
  //   cubic(0.125) = (1.5*0.125 - 2.5)*0.015625 + 1 = 0.9638672
  //   inner weight 0.9638672 / 3.3828125 = 0.2849365 -> 300 * 0.2849365 = 85.48 -> 85.
  // Without stretching it would be cubic(0.5) = 0.5625 -> 300 * 0.5625 = 168.75 -> 169.
  // Pillow 13 gives 85.
  const RgbImage image = make_image(4, 1, {0, 0, 0, 100, 100, 100, 200, 200, 200, 0, 0, 0});
  EXPECT_EQ(pixel(resize_bicubic(image, 1, 1), 0, 0), (std::vector<int>{85, 85, 85}));
}

TEST(ImageTransforms, ResizeKeepsConstantImagesAndSameSize) {
  // Taps sum to 1 (up to fixed-point rounding), so a constant image stays constant.
  const RgbImage flat = make_image(7, 5, std::vector<std::uint8_t>(7 * 5 * 3, 77));
  for (auto [w, h] : {std::pair{3, 2}, std::pair{20, 11}, std::pair{7, 9}}) {
    const RgbImage resized = resize_bicubic(flat, w, h);
    ASSERT_EQ(resized.pixels.size(), static_cast<std::size_t>(w) * h * 3);
    for (std::uint8_t value : resized.pixels) ASSERT_EQ(value, 77) << w << "x" << h;
  }
  const RgbImage same = resize_bicubic(make_image(2, 1, {1, 2, 3, 4, 5, 6}), 2, 1);
  EXPECT_EQ(same.pixels, (std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6}));
}

TEST(ImageTransforms, CenterCropFloorsOffsets) {
  // 4x1 -> 2x1: left = (4 - 2) // 2 = 1, so columns 1 and 2. 5x1 -> 2x1: left = 3 // 2 = 1.
  const RgbImage row = make_image(5, 1, {0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4});
  const RgbImage crop = center_crop(row, 2, 1);
  EXPECT_EQ(crop.pixels, (std::vector<std::uint8_t>{1, 1, 1, 2, 2, 2}));
  EXPECT_THROW(center_crop(row, 6, 1), Error);
}

TEST(ImageTransforms, NormalizeIsChannelMajorWithRescaleFirst) {
  // mean 0.5, std 0.5: (v / 255 - 0.5) / 0.5 = 2v/255 - 1.
  //   0 -> -1, 255 -> 1, 51 -> 0.4 - 1 = -0.6, 128 -> 256/255 - 1 = 0.0039216.
  // Pixels (0, 128, 255) and (255, 0, 51); output (3, 1, 2) = [R0 R1 | G0 G1 | B0 B1].
  const RgbImage image = make_image(2, 1, {0, 128, 255, 255, 0, 51});
  const PixelValues values = normalize_pixels(image, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5});
  ASSERT_EQ(values.channels, 3);
  ASSERT_EQ(values.height, 1);
  ASSERT_EQ(values.width, 2);
  const std::vector<float> expected = {-1.0f, 1.0f, 0.0039216f, -1.0f, 1.0f, -0.6f};
  ASSERT_EQ(values.data.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(values.data[i], expected[i], 1e-6);
}

TEST(ImageTransforms, PreprocessPadOnTwoByOneImage) {
  // 2x1 (0,0,0),(255,255,255) with size 2, mean 0.5, std 0.5, background int(0.5*255) = 127:
  // pad -> 2x2 with row 1 = 127; already 2x2, so no resize or crop; normalise:
  //   0 -> -1, 255 -> 1, 127 -> 254/255 - 1 = -0.0039216.
  ImageConfig config;
  config.size = 2;
  config.aspect = "pad";
  config.mean = {0.5, 0.5, 0.5};
  config.std = {0.5, 0.5, 0.5};
  const RgbImage image = make_image(2, 1, {0, 0, 0, 255, 255, 255});
  const PixelValues values = preprocess_image(image, config);
  ASSERT_EQ(values.data.size(), 12u);  // (3, 2, 2)
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(values.data[c * 4 + 0], -1.0f, 1e-6);
    EXPECT_NEAR(values.data[c * 4 + 1], 1.0f, 1e-6);
    EXPECT_NEAR(values.data[c * 4 + 2], -0.0039216f, 1e-6);
    EXPECT_NEAR(values.data[c * 4 + 3], -0.0039216f, 1e-6);
  }
}

TEST(ImageTransforms, PreprocessCropKeepsTheCentre) {
  // 4x2 with size 2, aspect crop: shortest edge already 2 (4x2 stays), crop columns 1..2.
  ImageConfig config;
  config.size = 2;
  config.aspect = "crop";
  config.mean = {0.0, 0.0, 0.0};
  config.std = {1.0, 1.0, 1.0};
  std::vector<std::uint8_t> pixels;
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 4; ++x) pixels.insert(pixels.end(), 3, static_cast<std::uint8_t>(x * 50));
  }
  const PixelValues values = preprocess_image(make_image(4, 2, pixels), config);
  ASSERT_EQ(values.width, 2);
  ASSERT_EQ(values.height, 2);
  // Row 0 of channel 0: columns 1 and 2 -> 50/255, 100/255.
  EXPECT_NEAR(values.data[0], 50.0f / 255, 1e-6);
  EXPECT_NEAR(values.data[1], 100.0f / 255, 1e-6);
}

TEST(ImageTransforms, PreprocessRejectsBadSettings) {
  const RgbImage image = make_image(1, 1, {1, 2, 3});
  ImageConfig config;
  config.std = {0.5, 0.0, 0.5};
  EXPECT_THROW(preprocess_image(image, config), Error);
  config = ImageConfig{};
  config.mean = {0.5};
  EXPECT_THROW(preprocess_image(image, config), Error);
  config = ImageConfig{};
  config.aspect = "stretch";
  EXPECT_THROW(preprocess_image(image, config), Error);
  EXPECT_THROW(preprocess_image(RgbImage{}, ImageConfig{}), Error);
}

}  // namespace
}  // namespace perpo
