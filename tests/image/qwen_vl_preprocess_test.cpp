// Qwen2.5-VL's image preprocessing (qwen_vl_preprocess.h) against transformers'
// Qwen2VLImageProcessor and Pillow, on the fixtures of tools/make_qwen_vl_image_fixtures.py
// (tests/fixtures/image/qwen_vl/cases.json):
//   smart_resize     every row of the script's table (transformers' own function), exactly;
//   pillow_resize_bicubic  Pillow's Image.resize(BICUBIC) on odd sizes, every byte equal, both
//                    pass orders (vertical first when the height shrinks by more than twice
//                    the width's pixels; at the boundary and one past it);
//   pixel_values     the processor's output to 1e-6 (expected: 0), grid_thw and token counts
//                    exactly. The fixture stores pixel_values as byte codes + a (3, 256) table
//                    of the processor's rescale + normalize (the script asserts the encoding).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perpo/core/error.h"
#include "perpo/image/image.h"
#include "perpo/image/qwen_vl_preprocess.h"
#include "perpo/image/transforms.h"
#include "test_paths.h"
#include "test_util.h"

namespace perpo {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr double kPixelTolerance = 1e-6;  // measured: 0 (same bytes, same float32 maths)

fs::path fixture_dir() { return fs::path(test::kTestsDir) / "fixtures" / "image" / "qwen_vl"; }

const Json& fixture() {
  static const Json cases = [] {
    std::ifstream in(fixture_dir() / "cases.json");
    if (!in) throw std::runtime_error("missing " + (fixture_dir() / "cases.json").string());
    return Json::parse(in);
  }();
  return cases;
}

std::vector<float> read_floats(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "missing " << path;
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

QwenVlImageOptions options_for(const Json& item) {
  const Json& cases = fixture();
  QwenVlImageOptions options;
  options.patch_size = cases.at("patch_size");
  options.merge_size = cases.at("merge_size");
  options.temporal_patch_size = cases.at("temporal_patch_size");
  options.mean = cases.at("image_mean").get<std::vector<double>>();
  options.std = cases.at("image_std").get<std::vector<double>>();
  options.min_pixels = item.at("min_pixels");
  options.max_pixels = item.at("max_pixels");
  return options;
}

/// Bytes that differ between two images of the same size.
int differing_bytes(const RgbImage& actual, const RgbImage& expected) {
  int count = 0;
  for (std::size_t i = 0; i < expected.pixels.size(); ++i)
    count += actual.pixels[i] != expected.pixels[i];
  return count;
}

/// smart_resize with std::round in place of Python's round: the bug the table must catch.
ImageSize smart_resize_with_std_round(int height, int width, int factor, std::int64_t min_pixels,
                                      std::int64_t max_pixels) {
  const double f = factor;
  double h = std::round(height / f) * f, w = std::round(width / f) * f;
  if (h * w > max_pixels) {
    const double beta = std::sqrt(double(height) * width / max_pixels);
    h = std::max(f, std::floor(height / beta / f) * f);
    w = std::max(f, std::floor(width / beta / f) * f);
  } else if (h * w < min_pixels) {
    const double beta = std::sqrt(min_pixels / (double(height) * width));
    h = std::ceil(height * beta / f) * f;
    w = std::ceil(width * beta / f) * f;
  }
  return {int(h), int(w)};
}

TEST(QwenVlSmartResize, MatchesTransformersOnTheTable) {
  const Json& rows = fixture().at("smart_resize");
  ASSERT_GE(rows.size(), 100u);
  int checked = 0, errors = 0, std_round_differs = 0;
  for (const Json& row : rows) {
    const int height = row[0], width = row[1], factor = row[2];
    const std::int64_t min_pixels = row[3], max_pixels = row[4];
    const std::string where = "smart_resize(" + std::to_string(height) + ", " +
                              std::to_string(width) + ", " + std::to_string(factor) + ", " +
                              std::to_string(min_pixels) + ", " + std::to_string(max_pixels) + ")";
    if (row[5].is_string()) {  // transformers raised (aspect ratio above 200)
      try {
        smart_resize(height, width, factor, min_pixels, max_pixels);
        ADD_FAILURE() << where << " should throw";
      } catch (const Error& e) {
        EXPECT_TRUE(e.is_input_error()) << where;
        EXPECT_NE(e.message().find("aspect ratio"), std::string::npos) << e.what();
      }
      ++errors;
      continue;
    }
    const ImageSize expected{row[5].get<int>(), row[6].get<int>()};
    const ImageSize size = smart_resize(height, width, factor, min_pixels, max_pixels);
    EXPECT_EQ(size.height, expected.height) << where;
    EXPECT_EQ(size.width, expected.width) << where;
    if (!(smart_resize_with_std_round(height, width, factor, min_pixels, max_pixels) == expected))
      ++std_round_differs;
    ++checked;
  }
  EXPECT_GE(errors, 4);
  EXPECT_GE(checked, 100);
  // The table holds exact halves where std::round would give another answer than transformers.
  std::cout << "[ measured ] " << std_round_differs << " of " << checked
            << " sizes differ with std::round in place of Python's round\n";
  EXPECT_GE(std_round_differs, 3);
}

TEST(QwenVlSmartResize, RejectsWhatTransformersRejectsAsInputErrors) {
  // Aspect ratio 201 (transformers: "absolute aspect ratio must be smaller than 200").
  const std::string ratio = test::error_of([] { smart_resize(1, 201); });
  EXPECT_NE(ratio.find("201x1"), std::string::npos) << ratio;
  EXPECT_NE(ratio.find("aspect ratio"), std::string::npos) << ratio;
  try {
    smart_resize(201, 1);
    ADD_FAILURE() << "201x1 should throw";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error());
  }
  // An image with an empty side is too small to resize.
  const std::string empty = test::error_of([] { smart_resize(0, 30); });
  EXPECT_NE(empty.find("too small"), std::string::npos) << empty;
  try {
    preprocess_qwen_vl_image(RgbImage{}, QwenVlImageOptions{});
    ADD_FAILURE() << "an empty image should throw";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error());
    EXPECT_NE(e.message().find("too small"), std::string::npos) << e.what();
  }
  // Settings that could give an empty grid.
  const std::string settings = test::error_of([] { smart_resize(30, 30, 28, 0, 1000); });
  EXPECT_NE(settings.find("min_pixels"), std::string::npos) << settings;
}

TEST(QwenVlResize, BicubicMatchesPillowOnOddSizes) {
  const Json& resizes = fixture().at("resize");
  ASSERT_GE(resizes.size(), 6u);
  for (const Json& item : resizes) {
    const RgbImage source = load_image(fixture_dir() / item.at("image").get<std::string>());
    const RgbImage expected = load_image(fixture_dir() / item.at("expected").get<std::string>());
    const int width = item.at("width"), height = item.at("height");
    ASSERT_EQ(expected.width, width);
    ASSERT_EQ(expected.height, height);
    const RgbImage resized = pillow_resize_bicubic(source, width, height);
    ASSERT_EQ(resized.width, width);
    ASSERT_EQ(resized.height, height);
    EXPECT_EQ(differing_bytes(resized, expected), 0)
        << item.at("image").get<std::string>() << " -> " << width << "x" << height;
  }
}

TEST(QwenVlProcessor, MatchesTransformers) {
  const Json& cases = fixture().at("cases");
  ASSERT_GE(cases.size(), 4u);
  const std::vector<float> table =
      read_floats(fixture_dir() / fixture().at("value_table").get<std::string>());
  ASSERT_EQ(table.size(), 3u * 256u);  // (3, 256)
  for (const Json& item : cases) {
    const std::string name = item.at("image").get<std::string>() + " min " +
                             std::to_string(item.at("min_pixels").get<int>()) + " max " +
                             std::to_string(item.at("max_pixels").get<int>());
    const QwenVlImageOptions options = options_for(item);
    const RgbImage image = load_image(fixture_dir() / item.at("image").get<std::string>());

    // The 8-bit resized image, byte for byte as the processor's PIL resize.
    const ImageSize size =
        smart_resize(image.height, image.width, options.patch_size * options.merge_size,
                     options.min_pixels, options.max_pixels);
    EXPECT_EQ(size.height, item.at("resized_height").get<int>()) << name;
    EXPECT_EQ(size.width, item.at("resized_width").get<int>()) << name;
    const RgbImage pil = load_image(fixture_dir() / item.at("resized").get<std::string>());
    const RgbImage resized = pillow_resize_bicubic(image, size.width, size.height);
    ASSERT_EQ(resized.pixels.size(), pil.pixels.size()) << name;
    EXPECT_EQ(differing_bytes(resized, pil), 0) << name;

    const QwenVlPixels pixels = preprocess_qwen_vl_image(image, options);
    const std::vector<int> shape = item.at("shape").get<std::vector<int>>();
    ASSERT_EQ(pixels.rows, shape[0]) << name;
    ASSERT_EQ(pixels.cols, shape[1]) << name;
    EXPECT_EQ(pixels.cols, 3 * 2 * 14 * 14);
    const std::vector<int> grid = item.at("grid_thw").get<std::vector<int>>();
    EXPECT_EQ(std::vector<int>(pixels.grid_thw.begin(), pixels.grid_thw.end()), grid) << name;
    EXPECT_EQ(pixels.image_tokens, item.at("image_tokens").get<int>()) << name;
    EXPECT_EQ(pixels.resized, size) << name;

    const RgbImage codes = load_image(fixture_dir() / item.at("codes").get<std::string>());
    ASSERT_EQ(codes.width, pixels.cols) << name;
    ASSERT_EQ(codes.height, pixels.rows) << name;
    const int per_channel = options.temporal_patch_size * options.patch_size * options.patch_size;
    double worst = 0;
    for (int row = 0; row < pixels.rows; ++row) {
      for (int col = 0; col < pixels.cols; ++col) {
        const std::size_t at = static_cast<std::size_t>(row) * pixels.cols + col;
        const int channel = col / per_channel;
        const float expected = table[channel * 256 + codes.pixels[at * 3]];  // grey PNG -> RGB
        worst = std::max(worst, std::fabs(double(pixels.data[at]) - expected));
      }
    }
    std::cout << "[ measured ] " << name << ": max |perpo - transformers| = " << worst << "\n";
    EXPECT_LE(worst, kPixelTolerance) << name;
  }
}

TEST(QwenVlProcessor, PatchLayoutFollowsMergeBlocks) {
  // A 28x56 (H x W) image: patch grid 2x4, merge blocks of 2x2 patches. Value = c*10000 +
  // y*100 + x. Row r: block r / 4 (blocks left to right), then patches (0,0) (0,1) (1,0) (1,1)
  // inside the block. Row 5 = block 1, patch (0,1) of it = grid (0, 3): x from 42, y from 0.
  PixelValues image;
  image.height = 28;
  image.width = 56;
  image.data.resize(3 * 28 * 56);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 56; ++x) image.data[(c * 28 + y) * 56 + x] = c * 10000 + y * 100 + x;
  const QwenVlPixels pixels = qwen_vl_patches(image, QwenVlImageOptions{});
  ASSERT_EQ(pixels.rows, 8);
  ASSERT_EQ(pixels.cols, 1176);
  EXPECT_EQ(pixels.grid_thw, (std::array<int, 3>{1, 2, 4}));
  EXPECT_EQ(pixels.image_tokens, 2);
  const auto value = [&](int row, int col) { return pixels.data[row * 1176 + col]; };
  EXPECT_EQ(value(0, 0), 0);           // patch (0,0), c 0, t 0, y 0, x 0
  EXPECT_EQ(value(1, 0), 14);          // patch (0,1): x from 14
  EXPECT_EQ(value(2, 0), 1400);        // patch (1,0): y from 14
  EXPECT_EQ(value(3, 0), 1414);        // patch (1,1)
  EXPECT_EQ(value(4, 0), 28);          // block 1, patch (0,2): x from 28
  EXPECT_EQ(value(5, 0), 42);          // patch (0,3)
  EXPECT_EQ(value(7, 0), 1442);        // patch (1,3)
  EXPECT_EQ(value(0, 13), 13);         // x 13 of the first patch row
  EXPECT_EQ(value(0, 14), 100);        // column 14 = y 1, x 0
  EXPECT_EQ(value(0, 196), 0);         // t = 1 repeats the still image: column 196 = t 1, y 0
  EXPECT_EQ(value(0, 196 + 29), 201);  // t 1, y 2, x 1
  // Column ((c * 2 + t) * 14 + y) * 14 + x for c 2, t 0, y 3, x 5 = 831; row 5 starts at x 42.
  EXPECT_EQ(value(5, 831), 20000 + 300 + 47);
  EXPECT_EQ(value(6, 1175), 20000 + 2700 + 41);  // c 2, t 1, y 13, x 13 of patch (1,2)
}

TEST(QwenVlProcessor, PatchLayoutRejectsPartialBlocks) {
  PixelValues image;
  image.height = 28;
  image.width = 42;  // 3 patches: not a whole number of 2x2 merge blocks
  image.data.resize(3 * 28 * 42);
  const std::string message = test::error_of([&] { qwen_vl_patches(image, QwenVlImageOptions{}); });
  EXPECT_NE(message.find("merge blocks"), std::string::npos) << message;
}

}  // namespace
}  // namespace perpo
