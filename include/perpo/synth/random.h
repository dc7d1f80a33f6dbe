// SynthRng: the random numbers of the synthetic task generators, identical on every platform.
//
//   perpo::SynthRng rng = perpo::SynthRng::for_record(/*seed=*/1, "grounding", /*index=*/17);
//   double x = rng.uniform(2.0, 30.0);     // [2, 30)
//   int kind = rng.below(3);               // 0, 1 or 2
//
// The standard library's distributions are implementation-defined (libstdc++ and libc++ give
// different numbers for one engine state), so the generators use this small SplitMix64 stream
// with its own mappings: same seed -> same records and byte-identical files everywhere. Each
// record gets its own stream from (seed, task, index), so record i does not depend on how many
// records come before it or on the order they are generated in.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace perpo {

class SynthRng {
 public:
  explicit SynthRng(std::uint64_t state) : state_(state) {}

  /// The stream of record `index` of `task` under `seed`.
  static SynthRng for_record(std::uint64_t seed, std::string_view task, std::uint64_t index) {
    std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a of the task name
    for (char c : task) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    SynthRng mixer(seed ^ (h * 0x9e3779b97f4a7c15ULL));
    const std::uint64_t base = mixer.next_u64();
    return SynthRng(base ^ (index * 0xd1b54a32d192ed03ULL + 0x8bb84b93962eacc9ULL));
  }

  /// SplitMix64 (Steele, Lea, Flood 2014).
  std::uint64_t next_u64() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1), 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  /// Uniform in [low, high).
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  /// Uniform integer in [0, n); n > 0. (Multiply-shift; the bias is below 2^-32 for small n.)
  int below(int n) {
    return static_cast<int>(((next_u64() >> 32) * static_cast<std::uint64_t>(n)) >> 32);
  }
  /// Uniform integer in [low, high], both included.
  int between(int low, int high) { return low + below(high - low + 1); }
  bool chance(double p) { return uniform() < p; }

  template <typename T>
  const T& pick(const std::vector<T>& items) {
    return items[below(static_cast<int>(items.size()))];
  }
  template <typename T>
  void shuffle(std::vector<T>& items) {  // Fisher-Yates
    for (int i = static_cast<int>(items.size()) - 1; i > 0; --i) {
      std::swap(items[i], items[below(i + 1)]);
    }
  }

 private:
  std::uint64_t state_;
};

}  // namespace perpo
