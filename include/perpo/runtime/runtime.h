// Process-wide LibTorch settings: seeding, devices, dtypes, threads.
//
//   perpo::seed_all(42);                                  // std, C and torch RNGs (CPU + CUDA)
//   torch::Device device = perpo::parse_device("cuda:1");
//   torch::Dtype dtype = perpo::parse_dtype("bf16");
#pragma once

#include <chrono>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <random>
#include <string>

namespace perpo {

/// Seeds every RNG perpo uses from one seed: perpo's global std::mt19937_64, C's rand, and
/// LibTorch's CPU and CUDA generators.
void seed_all(std::uint64_t seed);

/// perpo's global engine for host-side randomness (shuffling, synthetic data).
std::mt19937_64& global_rng();

/// "cpu", "cuda", "cuda:N". Throws perpo::Error (input) for anything else, or for CUDA when
/// this LibTorch has no CUDA device.
c10::Device parse_device(const std::string& text);

/// "fp32"|"float32", "bf16"|"bfloat16", "fp16"|"float16". Throws perpo::Error (input) otherwise.
c10::ScalarType parse_dtype(const std::string& text);

/// Sets LibTorch's intra-op threads and returns the count in use. 0 = auto: LibTorch's default
/// when OMP_NUM_THREADS is set, else threads_for_load of the cores this process may use and the
/// cores other processes keep busy (measured over 100 ms from /proc/stat).
int set_threads(int threads);

/// Cores kept busy by other processes, measured from /proc/stat over `window` while the calling
/// thread sleeps (what set_threads' auto reads; perpo bench reports it); 0 when unknown.
double busy_cores_elsewhere(std::chrono::milliseconds window);

/// The auto thread count: `cores` less the cores that `busy_cores` (other processes' load) takes,
/// rounding half a core up, at least 1. (2, 0.2) -> 2; (2, 1.0) -> 1; (8, 2.6) -> 5.
int threads_for_load(int cores, double busy_cores);

/// "LibTorch 2.13.0, CUDA: no, threads: 2" for --version and logs.
std::string runtime_summary();

}  // namespace perpo
