// Device helpers of perpo bench (private to src/bench): synchronisation for timing, peak memory
// of a phase, the device's name. CUDA parts exist when LibTorch has CUDA (PERPO_BENCH_CUDA, set by
// CMake); the CPU build never calls them.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>

namespace perpo::bench_detail {

/// Waits for the device's queued work (no-op on CPU).
void synchronize(const c10::Device& device);
/// Starts a new peak: CPU resets the process's peak resident set (VmHWM, /proc/self/clear_refs);
/// CUDA resets the caching allocator's peak statistics.
void reset_peak_memory(const c10::Device& device);
/// MiB since the last reset: CPU peak resident set of the process (VmHWM); CUDA peak bytes
/// allocated by tensors (torch.cuda.max_memory_allocated).
double peak_memory_mib(const c10::Device& device);
/// "cpu" or the GPU's name, e.g. "NVIDIA H200".
std::string device_name(const c10::Device& device);
/// Memory of a CUDA device in bytes (0 when unknown).
std::uint64_t cuda_total_bytes(const c10::Device& device);

}  // namespace perpo::bench_detail
