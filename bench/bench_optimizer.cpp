// Time of one optimizer step (global-norm clipping + AdamW) on the trained parameters of
// `perpo bench`'s shapes: perpo's AdamW with each kernel (optimizer.h: fused, CUDA's default;
// per tensor, CPU's) against LibTorch's own torch::optim::AdamW with
// torch::nn::utils::clip_grad_norm_, the same parameters and gradients, one after the other.
//
//   build/bench/bench_bench_optimizer [steps=200] [threads=1] [shapes=tiny,small]
// Trained as `perpo bench` trains: projector and decoder (full fine-tuning, fp32), vision frozen.
// Prints milliseconds per step (wall and process CPU time) and the peer / perpo ratio.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "perpo/bench/bench_shape.h"
#include "perpo/core/strings.h"
#include "perpo/model/llava.h"
#include "perpo/train/optimizer.h"

namespace {

double cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

struct Timing {
  double wall_ms = 0;
  double cpu_ms = 0;
};

template <typename Step>
Timing time_steps(int steps, Step&& step) {
  for (int i = 0; i < 5; ++i) step();  // warm-up
  const auto wall_start = std::chrono::steady_clock::now();
  const double cpu_start = cpu_seconds();
  for (int i = 0; i < steps; ++i) step();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return {1e3 * wall / steps, 1e3 * (cpu_seconds() - cpu_start) / steps};
}

void run_shape(const std::string& name, int steps) {
  const perpo::BenchShape shape = perpo::bench_shape(name);
  torch::manual_seed(1);
  perpo::LlavaModel model(shape.llava);  // the LLaVA shapes (tiny, small)
  std::vector<std::pair<std::string, at::Tensor>> trained;
  std::int64_t elements = 0;
  for (const auto& item : model->named_parameters()) {
    const bool vision = perpo::parameter_group_of(item.key()) == "vision";
    item.value().requires_grad_(!vision);
    if (vision) continue;
    trained.emplace_back(item.key(), item.value());
    elements += item.value().numel();
  }
  // Independent copies of the trained weights with the same gradients.
  torch::OrderedDict<std::string, at::Tensor> fused_params, loop_params;
  std::vector<at::Tensor> theirs;
  for (const auto& [key, value] : trained) {
    const at::Tensor grad = 1e-3 * torch::randn(value.sizes());
    for (auto* into : {&fused_params, &loop_params}) {
      at::Tensor copy = value.detach().clone().requires_grad_(true);
      copy.mutable_grad() = grad.clone();
      into->insert(key, copy);
    }
    at::Tensor copy = value.detach().clone().requires_grad_(true);
    copy.mutable_grad() = grad.clone();
    theirs.push_back(copy);
  }
  perpo::OptimConfig config;
  config.lr = 1e-5;
  config.weight_decay = 0.01;
  perpo::AdamW fused_optim(fused_params, config, perpo::AdamW::Kernel::kFused);
  perpo::AdamW loop_optim(loop_params, config, perpo::AdamW::Kernel::kPerTensor);
  torch::optim::AdamW peer(theirs, torch::optim::AdamWOptions(1e-5).weight_decay(0.01));
  const Timing fused = time_steps(steps, [&, params = fused_optim.params()] {
    perpo::clip_grad_norm_tensor(params, 1.0);
    fused_optim.step();
  });
  const Timing loop = time_steps(steps, [&, params = loop_optim.params()] {
    perpo::clip_grad_norm_tensor(params, 1.0);
    loop_optim.step();
  });
  const Timing plain = time_steps(steps, [&] {
    torch::nn::utils::clip_grad_norm_(theirs, 1.0);
    peer.step();
  });
  std::printf(
      "%-6s %4zu tensors %10lld weights | perpo fused %8.3f ms (cpu %8.3f), per tensor "
      "%8.3f ms (cpu %8.3f) | LibTorch AdamW %8.3f ms (cpu %8.3f) | LibTorch / fused "
      "%.2fx wall, %.2fx cpu; LibTorch / per tensor %.2fx wall\n",
      name.c_str(), trained.size(), static_cast<long long>(elements), fused.wall_ms, fused.cpu_ms,
      loop.wall_ms, loop.cpu_ms, plain.wall_ms, plain.cpu_ms, plain.wall_ms / fused.wall_ms,
      plain.cpu_ms / fused.cpu_ms, plain.wall_ms / loop.wall_ms);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 200;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  const std::string shapes = argc > 3 ? argv[3] : "tiny,small";
  torch::set_num_threads(threads);
  torch::NoGradGuard no_grad;
  std::printf("optimizer step (clip + AdamW), %d steps, %d thread(s)\n", steps, threads);
  for (const std::string& name : perpo::split(shapes, ',')) run_shape(name, steps);
  return 0;
}
