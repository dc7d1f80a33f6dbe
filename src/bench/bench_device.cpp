// Device helpers of perpo bench (bench_device.h).
#include "bench_device.h"

#include <sys/resource.h>
#include <torch/cuda.h>

#include <cstdint>
#include <fstream>
#include <sstream>

#ifdef PERPO_BENCH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace perpo::bench_detail {

namespace {

/// A "Key:   123 kB" field of /proc/self/status in KiB, or -1.
long long status_kib(const std::string& key) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      std::istringstream fields(line.substr(key.size() + 1));
      long long kib = -1;
      fields >> kib;
      return kib;
    }
  }
  return -1;
}

}  // namespace

void synchronize(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
}

void reset_peak_memory(const c10::Device& device) {
  if (device.is_cuda()) {
#ifdef PERPO_BENCH_CUDA
    c10::cuda::CUDACachingAllocator::resetPeakStats(
        device.has_index() ? device.index() : c10::cuda::current_device());
#endif
    return;
  }
  // "5" resets the peak resident set size to the current one (Linux >= 4.0).
  std::ofstream("/proc/self/clear_refs") << "5";
}

double peak_memory_mib(const c10::Device& device) {
  if (device.is_cuda()) {
#ifdef PERPO_BENCH_CUDA
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(
        device.has_index() ? device.index() : c10::cuda::current_device());
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0);  // aggregate
#else
    return 0;
#endif
  }
  const long long kib = status_kib("VmHWM");
  if (kib >= 0) return kib / 1024.0;
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // since the start of the process
}

std::string device_name(const c10::Device& device) {
#ifdef PERPO_BENCH_CUDA
  if (device.is_cuda()) {
    return at::cuda::getDeviceProperties(device.has_index() ? device.index()
                                                            : c10::cuda::current_device())
        ->name;
  }
#endif
  return device.is_cuda() ? "cuda" : "cpu";
}

std::uint64_t cuda_total_bytes(const c10::Device& device) {
#ifdef PERPO_BENCH_CUDA
  if (device.is_cuda()) {
    return at::cuda::getDeviceProperties(device.has_index() ? device.index()
                                                            : c10::cuda::current_device())
        ->totalGlobalMem;
  }
#endif
  return 0;
}

}  // namespace perpo::bench_detail
