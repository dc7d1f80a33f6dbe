// Images preprocessed per second on one core: a 640x480 JPEG (encoded in memory here with
// stb_image_write, quality 90) decoded with stb_image, then LLaVA-1.5 preprocessing to 336x336
// (pad to 640x640, bicubic resize, normalise). Decode and preprocess are timed separately.
// Rates are per second of this thread's CPU time (one core), so a busy machine does not lower
// them; the wall-clock rate is printed next to each.
//
//   ./build/bench/bench_image_preprocess [cpu_seconds_per_phase=2]
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <random>
#include <vector>

#include "perpo/image/image.h"
#include "perpo/image/transforms.h"

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

namespace {

using Clock = std::chrono::steady_clock;

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<std::uint8_t>*>(context);
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + size);
}

/// A photo-like test picture: gradients, a few discs and sensor-like noise. (H, W, 3)
std::vector<std::uint8_t> synthetic_picture(int width, int height) {
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0.0, 8.0);
  std::vector<std::uint8_t> pixels(static_cast<std::size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      double rgb[3] = {255.0 * x / width, 255.0 * y / height,
                       128 + 100 * std::sin(x / 17.0) * std::cos(y / 23.0)};
      for (int disc = 0; disc < 3; ++disc) {
        const double cx = width * (0.25 + 0.25 * disc), cy = height * (0.3 + 0.2 * disc);
        if ((x - cx) * (x - cx) + (y - cy) * (y - cy) < 60.0 * 60.0) rgb[disc] = 240;
      }
      for (int c = 0; c < 3; ++c) {
        const double value = std::round(rgb[c] + noise(rng));
        pixels[(static_cast<std::size_t>(y) * width + x) * 3 + c] =
            static_cast<std::uint8_t>(value < 0     ? 0
                                      : value > 255 ? 255
                                                    : value);
      }
    }
  }
  return pixels;
}

/// CPU seconds used by this thread: unlike wall time, not inflated when other processes share
/// the core.
double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return now.tv_sec + now.tv_nsec * 1e-9;
}

struct Rate {
  double per_cpu_second = 0;   // calls per second of this thread's CPU time
  double per_wall_second = 0;  // calls per second of elapsed time
};

/// Runs `work` repeatedly for about `seconds` of CPU time.
Rate measure(double seconds, const std::function<void()>& work) {
  work();  // warm up
  long calls = 0;
  const auto wall_start = Clock::now();
  const double cpu_start = thread_cpu_seconds();
  double cpu = 0;
  do {
    work();
    ++calls;
    cpu = thread_cpu_seconds() - cpu_start;
  } while (cpu < seconds);
  const double wall = std::chrono::duration<double>(Clock::now() - wall_start).count();
  return {calls / cpu, calls / wall};
}

void print_rate(const char* what, const Rate& rate) {
  std::printf("%-34s %8.1f images/s  %7.3f ms/image   (wall clock: %7.1f images/s)\n", what,
              rate.per_cpu_second, 1e3 / rate.per_cpu_second, rate.per_wall_second);
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  constexpr int kWidth = 640, kHeight = 480;
  const std::vector<std::uint8_t> picture = synthetic_picture(kWidth, kHeight);
  std::vector<std::uint8_t> jpeg;
  if (!stbi_write_jpg_to_func(append_bytes, &jpeg, kWidth, kHeight, 3, picture.data(), 90)) {
    std::fprintf(stderr, "could not encode the test JPEG\n");
    return 1;
  }

  perpo::ImageConfig config;  // LLaVA-1.5: size 336, aspect pad, CLIP mean/std
  const perpo::RgbImage decoded = perpo::decode_image(jpeg.data(), jpeg.size(), "bench.jpg");
  double checksum = 0;  // keeps the compiler from dropping the work

  const Rate decode_rate = measure(seconds, [&] {
    const perpo::RgbImage image = perpo::decode_image(jpeg.data(), jpeg.size(), "bench.jpg");
    checksum += image.pixels[0];
  });
  const Rate pad_rate =
      measure(seconds, [&] { checksum += perpo::preprocess_image(decoded, config).data[0]; });
  const perpo::RgbImage square = perpo::expand_to_square(decoded, perpo::pad_colour(config.mean));
  const Rate resize_rate = measure(seconds, [&] {
    checksum += perpo::resize_bicubic(square, config.size, config.size).pixels[0];
  });
  perpo::ImageConfig crop_config = config;
  crop_config.aspect = "crop";
  const Rate crop_rate =
      measure(seconds, [&] { checksum += perpo::preprocess_image(decoded, crop_config).data[0]; });
  const Rate total_rate = measure(seconds, [&] {
    const perpo::RgbImage image = perpo::decode_image(jpeg.data(), jpeg.size(), "bench.jpg");
    checksum += perpo::preprocess_image(image, config).data[0];
  });

  std::printf("input: %dx%d JPEG, %zu bytes (quality 90); output (3, %d, %d) float32; 1 thread\n",
              kWidth, kHeight, jpeg.size(), config.size, config.size);
  print_rate("decode (stb_image)", decode_rate);
  print_rate("preprocess pad (640x640 -> 336)", pad_rate);
  print_rate("  of which bicubic resize alone", resize_rate);
  print_rate("preprocess crop (448x336 -> 336)", crop_rate);
  print_rate("decode + preprocess pad", total_rate);
  std::printf("(checksum %.3f)\n", checksum);
  return 0;
}
