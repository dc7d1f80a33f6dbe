// Image decoding through stb_image (the single STB_IMAGE_IMPLEMENTATION of perpo lives here).
//
// Colour: every image becomes 8-bit RGB as PIL's Image.convert("RGB") does it, which is what
// LLaVA applies to each image it opens:
//   grey        -> (g, g, g)
//   grey+alpha  -> (g, g, g), alpha dropped
//   RGBA        -> (r, g, b), alpha dropped (not composited over a background)
//   palette     -> the palette colour (stb expands palettes while decoding)
// 16-bit PNGs are reduced to 8 bits by stb (high byte); PIL treats some of those differently, so
// they are accepted but not promised to match transformers exactly.
// No EXIF handling: the orientation tag is ignored, as in PIL's Image.open (and so in LLaVA).
// Formats: PNG, JPEG, BMP and GIF (first frame). Formats with weak signatures (TGA, PIC, PNM, ...)
// are left out so that arbitrary bytes are not mistaken for an image.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <system_error>

#include "perpo/core/error.h"
#include "perpo/image/image.h"

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC  // keep stb's symbols private to this file
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_NO_STDIO  // perpo reads the file itself, to report missing/unreadable/empty apart
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace perpo {
namespace {

constexpr const char* kFormatsHint = "perpo reads PNG, JPEG, BMP and GIF images";

struct StbFree {
  void operator()(stbi_uc* pixels) const { stbi_image_free(pixels); }
};

}  // namespace

RgbImage decode_image(const std::uint8_t* bytes, std::size_t size, const std::string& name) {
  if (size == 0) {
    throw input_error("image '", name, "' is empty (0 bytes)")
        .hint("the file was probably truncated while copying; restore it");
  }
  if (size > static_cast<std::size_t>(INT32_MAX)) {
    throw input_error("image '", name, "' is too large to decode (", size, " bytes)");
  }
  int width = 0;
  int height = 0;
  int channels_in_file = 0;
  // Asking for 3 channels makes stb convert grey, grey+alpha, RGBA and palettes to RGB.
  std::unique_ptr<stbi_uc, StbFree> pixels(stbi_load_from_memory(
      bytes, static_cast<int>(size), &width, &height, &channels_in_file, /*desired_channels=*/3));
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    throw input_error("image '", name, "' could not be decoded (", reason ? reason : "unknown", ")")
        .hint(kFormatsHint);
  }
  if (width <= 0 || height <= 0) {
    throw input_error("image '", name, "' has zero size (", width, "x", height, ")");
  }
  RgbImage image;
  image.width = width;
  image.height = height;
  const std::size_t count = static_cast<std::size_t>(width) * height * 3;
  image.pixels.assign(pixels.get(), pixels.get() + count);  // (H, W, 3)
  return image;
}

namespace {

/// The bytes of an image file, with load_image's checks and messages.
std::vector<std::uint8_t> read_image_file(const std::filesystem::path& path) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) {
    throw input_error("image file '", path.string(), "' does not exist")
        .hint("image paths in a JSONL file are relative to that file's folder");
  }
  if (std::filesystem::is_directory(status)) {
    throw input_error("image path '", path.string(), "' is a folder, not an image file");
  }
  if (!std::filesystem::is_regular_file(status)) {  // a FIFO without a writer would block
    throw input_error("image path '", path.string(), "' is not a regular file")
        .hint("images are regular PNG, JPEG, BMP, GIF or PNM files");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw input_error("image file '", path.string(), "' could not be opened for reading")
        .hint("check the file's permissions");
  }
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
  if (in.bad()) {
    throw input_error("image file '", path.string(), "' could not be read");
  }
  return bytes;
}

}  // namespace

RgbImage load_image(const std::filesystem::path& path) {
  const std::vector<std::uint8_t> bytes = read_image_file(path);
  return decode_image(bytes.data(), bytes.size(), path.string());
}

ImageDims read_image_dims(const std::filesystem::path& path) {
  const std::vector<std::uint8_t> bytes = read_image_file(path);
  if (bytes.empty()) {
    throw input_error("image '", path.string(), "' is empty (0 bytes)")
        .hint("the file was probably truncated while copying; restore it");
  }
  if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) {
    throw input_error("image '", path.string(), "' is too large to decode (", bytes.size(),
                      " bytes)");
  }
  ImageDims dims;
  int channels = 0;
  if (!stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &dims.width,
                             &dims.height, &channels) ||
      dims.width <= 0 || dims.height <= 0) {
    const char* reason = stbi_failure_reason();
    throw input_error("image '", path.string(), "' could not be decoded (",
                      reason ? reason : "unknown", ")")
        .hint(kFormatsHint);
  }
  return dims;
}

}  // namespace perpo
