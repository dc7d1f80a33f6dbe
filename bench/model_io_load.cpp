// Checkpoint I/O throughput: writing a safetensors checkpoint, opening it (header parse + mmap),
// and loading every tensor into fp32 parameters (BF16 -> F32 conversion, as a 7B bf16 checkpoint
// loaded for CPU training).
//
//   ./build/bench/bench_model_io_load [MB of bf16 weights, default 256] [folder, default /tmp]
//
// The file is read right after being written, so it comes from the page cache: the figures are the
// CPU cost of perpo's reader (mmap, copy, convert), not the disk's speed.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "perpo/model/safetensors.h"

namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const std::int64_t megabytes = argc > 1 ? std::stoll(argv[1]) : 256;
  const fs::path dir = fs::path(argc > 2 ? argv[2] : "/tmp") / "perpo_bench_model_io";
  fs::remove_all(dir);
  fs::create_directories(dir);

  // 4096 x 1024 bf16 = 8 MiB per tensor, like one LLaMA-7B projection's quarter.
  const std::int64_t rows = 4096, cols = 1024;
  const std::int64_t tensor_bytes = rows * cols * 2;
  const std::int64_t count = std::max<std::int64_t>(1, megabytes * (1 << 20) / tensor_bytes);
  perpo::NamedTensors tensors;
  for (std::int64_t i = 0; i < count; ++i) {
    tensors.emplace_back("model.language_model.layers." + std::to_string(i) + ".mlp.up_proj.weight",
                         torch::randn({rows, cols}).to(torch::kBFloat16));
  }
  const double total_mb = static_cast<double>(count * tensor_bytes) / (1 << 20);

  auto start = std::chrono::steady_clock::now();
  perpo::write_safetensors_checkpoint(dir, tensors, 5'000'000'000);
  double write_s = seconds_since(start);

  start = std::chrono::steady_clock::now();
  perpo::SafetensorsCheckpoint checkpoint(dir);
  double open_s = seconds_since(start);

  std::vector<torch::Tensor> params;
  for (std::int64_t i = 0; i < count; ++i) params.push_back(torch::empty({rows, cols}));  // fp32
  start = std::chrono::steady_clock::now();
  {
    torch::NoGradGuard no_grad;
    auto names = checkpoint.names();
    for (std::size_t i = 0; i < names.size(); ++i) params[i].copy_(checkpoint.tensor(names[i]));
  }
  double load_s = seconds_since(start);

  std::printf("checkpoint: %lld tensors, %.0f MiB bf16, torch threads %d\n",
              static_cast<long long>(count), total_mb, torch::get_num_threads());
  std::printf("write (atomic, fsync)     %8.3f s  %8.0f MiB/s\n", write_s, total_mb / write_s);
  std::printf("open (mmap + header)      %8.4f s\n", open_s);
  std::printf("load bf16 -> fp32 params  %8.3f s  %8.0f MiB/s (of bf16 read)\n", load_s,
              total_mb / load_s);
  fs::remove_all(dir);
  return 0;
}
