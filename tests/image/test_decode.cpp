// Decoding: colour conversion to RGB (hand-made images encoded in memory) and error messages.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "perpo/core/error.h"
#include "perpo/image/image.h"
#include "test_paths.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace perpo {
namespace {

namespace fs = std::filesystem;

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<std::uint8_t>*>(context);
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + size);
}

/// PNG bytes of a width x height image with `channels` (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA).
std::vector<std::uint8_t> encode_png(int width, int height, int channels,
                                     const std::vector<std::uint8_t>& pixels) {
  std::vector<std::uint8_t> png;
  EXPECT_TRUE(stbi_write_png_to_func(append_bytes, &png, width, height, channels, pixels.data(),
                                     width * channels));
  return png;
}

fs::path scratch_file(const std::string& name, const std::vector<std::uint8_t>& bytes) {
  const fs::path dir = fs::path(test::kScratchDir) / "image";
  fs::create_directories(dir);
  const fs::path path = dir / name;
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  return path;
}

/// Runs `action`, expects a perpo input error and returns its full message.
template <typename Action>
std::string input_error_message(Action action) {
  try {
    action();
  } catch (const Error& error) {
    EXPECT_TRUE(error.is_input_error()) << error.what();
    return error.what();
  }
  ADD_FAILURE() << "expected a perpo::Error";
  return "";
}

TEST(ImageDecode, GreyBecomesThreeEqualChannels) {
  const auto png = encode_png(2, 1, 1, {0, 200});
  const RgbImage image = decode_image(png.data(), png.size(), "grey.png");
  ASSERT_EQ(image.width, 2);
  ASSERT_EQ(image.height, 1);
  EXPECT_EQ(image.pixels, (std::vector<std::uint8_t>{0, 0, 0, 200, 200, 200}));
}

TEST(ImageDecode, AlphaIsDroppedNotComposited) {
  // As PIL's convert("RGB"): a fully transparent red pixel stays red (no blending with white).
  const auto rgba = encode_png(2, 1, 4, {255, 0, 0, 0, 10, 20, 30, 128});
  const RgbImage image = decode_image(rgba.data(), rgba.size(), "rgba.png");
  EXPECT_EQ(image.pixels, (std::vector<std::uint8_t>{255, 0, 0, 10, 20, 30}));

  const auto grey_alpha = encode_png(1, 2, 2, {90, 0, 180, 255});
  const RgbImage grey = decode_image(grey_alpha.data(), grey_alpha.size(), "la.png");
  ASSERT_EQ(grey.height, 2);
  EXPECT_EQ(grey.pixels, (std::vector<std::uint8_t>{90, 90, 90, 180, 180, 180}));
}

TEST(ImageDecode, LoadImageReadsFromDisk) {
  const fs::path path = scratch_file("rgb.png", encode_png(1, 1, 3, {7, 8, 9}));
  const RgbImage image = load_image(path);
  EXPECT_EQ(image.pixels, (std::vector<std::uint8_t>{7, 8, 9}));
}

TEST(ImageDecode, DimsFromTheHeaderEqualTheDecodedSize) {
  std::vector<std::uint8_t> rgb(5 * 3 * 3, 100);
  const fs::path path = scratch_file("five_by_three.png", encode_png(5, 3, 3, rgb));
  const ImageDims dims = read_image_dims(path);
  const RgbImage image = load_image(path);
  EXPECT_EQ(dims.width, 5);
  EXPECT_EQ(dims.height, 3);
  EXPECT_EQ(image.width, dims.width);
  EXPECT_EQ(image.height, dims.height);
  // The same refusals as load_image, naming the file.
  const fs::path missing = fs::path(test::kScratchDir) / "image" / "no_such_dims.png";
  EXPECT_NE(input_error_message([&] { read_image_dims(missing); }).find("no_such_dims.png"),
            std::string::npos);
  const fs::path empty = scratch_file("empty_dims.png", {});
  EXPECT_NE(input_error_message([&] { read_image_dims(empty); }).find("empty"), std::string::npos);
  const fs::path text =
      scratch_file("text_dims.png", {'h', 'e', 'l', 'l', 'o', ' ', 'p', 'n', 'g'});
  EXPECT_NE(input_error_message([&] { read_image_dims(text); }).find("could not be decoded"),
            std::string::npos);
}

TEST(ImageDecode, MissingFileNamesThePath) {
  const fs::path path = fs::path(test::kScratchDir) / "image" / "no_such_image.png";
  const std::string message = input_error_message([&] { load_image(path); });
  EXPECT_NE(message.find("no_such_image.png"), std::string::npos) << message;
  EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
}

TEST(ImageDecode, FolderIsNotAnImage) {
  const fs::path dir = fs::path(test::kScratchDir) / "image" / "a_folder.png";
  fs::create_directories(dir);
  const std::string message = input_error_message([&] { load_image(dir); });
  EXPECT_NE(message.find("a_folder.png"), std::string::npos) << message;
  EXPECT_NE(message.find("folder"), std::string::npos) << message;
}

TEST(ImageDecode, EmptyFileIsReportedAsEmpty) {
  const fs::path path = scratch_file("empty.jpg", {});
  const std::string message = input_error_message([&] { load_image(path); });
  EXPECT_NE(message.find("empty.jpg"), std::string::npos) << message;
  EXPECT_NE(message.find("empty"), std::string::npos) << message;
}

TEST(ImageDecode, GarbageBytesAreNotAnImage) {
  std::vector<std::uint8_t> garbage;
  for (int i = 0; i < 300; ++i) garbage.push_back(static_cast<std::uint8_t>(i * 37 + 11));
  const fs::path path = scratch_file("garbage.png", garbage);
  const std::string message = input_error_message([&] { load_image(path); });
  EXPECT_NE(message.find("garbage.png"), std::string::npos) << message;
  EXPECT_NE(message.find("could not be decoded"), std::string::npos) << message;

  const std::string text = "{\"not\": \"an image\"}";
  const std::string text_message = input_error_message([&] {
    decode_image(reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), "notes.json");
  });
  EXPECT_NE(text_message.find("notes.json"), std::string::npos) << text_message;
}

TEST(ImageDecode, TruncatedPngIsAnError) {
  auto png = encode_png(8, 8, 3, std::vector<std::uint8_t>(8 * 8 * 3, 100));
  png.resize(png.size() / 2);
  const std::string message =
      input_error_message([&] { decode_image(png.data(), png.size(), "cut.png"); });
  EXPECT_NE(message.find("cut.png"), std::string::npos) << message;
}

TEST(ImageDecode, ZeroWidthHeaderIsAnError) {
  // IHDR width is the big-endian 32-bit value at byte 16 (8-byte signature, 4 length, 4 "IHDR").
  auto png = encode_png(2, 2, 3, std::vector<std::uint8_t>(12, 50));
  ASSERT_EQ(std::string(png.begin() + 12, png.begin() + 16), "IHDR");
  png[16] = png[17] = png[18] = png[19] = 0;
  const std::string message =
      input_error_message([&] { decode_image(png.data(), png.size(), "zero.png"); });
  EXPECT_NE(message.find("zero.png"), std::string::npos) << message;
}

}  // namespace
}  // namespace perpo
