// Prints time and peak memory of answer log-probs from hidden states, forward + backward:
// the plain path (full (M, V) logits, autograd) against token_logps_from_hidden in chunks; and
// the time of the listwise objectives on (B, N) log-probs.
//
//   ./build-loss/bench/bench_loss_logps [rows=512] [hidden=512] [vocab=32000] [chunk=128]
//
// Each variant runs in its own forked process; its peak memory is the growth of the resident
// high-water mark (VmHWM) over the resident size at its start. Both hidden and the LM head get
// gradients (full fine-tuning; with a frozen head the (V, H) gradient disappears from both).
// Set OMP_NUM_THREADS=1 on a shared machine: oversubscribed OpenMP threads distort everything.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "perpo/loss/objectives.h"
#include "perpo/loss/sequence_logps.h"

namespace {

/// A "VmRSS:" / "VmHWM:" line of /proc/self/status, in MiB.
double rss_mib(const std::string& key) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(key.size())) / 1024.0;
  }
  return 0;
}

template <typename F>
double best_ms(int repeats, F&& run) {
  double best = 1e30;
  for (int k = 0; k < repeats; ++k) {
    auto start = std::chrono::steady_clock::now();
    run();
    auto stop = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(stop - start).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t rows = argc > 1 ? std::stoll(argv[1]) : 512;
  const std::int64_t hidden_size = argc > 2 ? std::stoll(argv[2]) : 512;
  const std::int64_t vocab = argc > 3 ? std::stoll(argv[3]) : 32000;
  const std::int64_t chunk = argc > 4 ? std::stoll(argv[4]) : 128;
  torch::manual_seed(0);
  auto hidden = torch::randn({rows, hidden_size}).requires_grad_(true);            // (M, H)
  auto weight = (torch::randn({vocab, hidden_size}) * 0.02).requires_grad_(true);  // (V, H)
  auto targets = torch::randint(0, vocab, {rows}, torch::kLong);                   // (M,)
  std::printf("answer log-probs, M=%lld rows, H=%lld, V=%lld, float32, threads=%d\n",
              static_cast<long long>(rows), static_cast<long long>(hidden_size),
              static_cast<long long>(vocab), torch::get_num_threads());
  std::printf("  full logits would be %.1f MiB\n", rows * vocab * 4 / 1048576.0);

  // Each variant runs in a forked child, so its resident high-water mark is its own.
  torch::Tensor plain_grad = [&] {
    auto logits = hidden.matmul(weight.t());  // (M, V)
    auto grads = torch::autograd::grad({perpo::token_logps(logits, targets).sum()}, {hidden});
    return grads[0];
  }();
  auto measure = [&](const char* label, std::int64_t chunk_rows) {
    std::fflush(stdout);
    if (fork() != 0) {
      wait(nullptr);
      return;
    }
    const double rss_before = rss_mib("VmRSS:");
    torch::Tensor grad_hidden;
    const double ms = best_ms(2, [&] {
      torch::Tensor tokens =
          chunk_rows > 0 ? perpo::token_logps_from_hidden(hidden, weight, targets, chunk_rows)
                         : perpo::token_logps(hidden.matmul(weight.t()), targets);
      auto grads = torch::autograd::grad({tokens.sum()}, {hidden, weight});  // (M, H), (V, H)
      grad_hidden = grads[0];
    });
    std::printf("  %-22s %8.1f ms fwd+bwd, peak +%7.1f MiB, max |grad - plain grad| = %.2g\n",
                label, ms, rss_mib("VmHWM:") - rss_before,
                (grad_hidden - plain_grad).abs().max().item<double>());
    std::fflush(stdout);
    std::_Exit(0);
  };
  for (std::int64_t chunk_rows : {chunk, 4 * chunk}) {
    const std::string label = "chunked, chunk=" + std::to_string(chunk_rows) + ":";
    measure(label.c_str(), chunk_rows);
  }
  measure("plain (full logits):", 0);

  // The objectives themselves: (B, N) numbers, so they should cost next to nothing.
  for (auto [lists, answers] : {std::pair<int, int>{2, 20}, {64, 20}, {8, 64}}) {
    perpo::ListwiseInputs in;
    in.policy_logps = torch::randn({lists, answers}).requires_grad_(true);
    in.ref_logps = torch::randn({lists, answers});
    in.rewards = torch::rand({lists, answers});
    for (const char* name : {"perpo", "dpo", "lipo", "ranking"}) {
      perpo::LossConfig config;
      config.name = name;
      const double ms = best_ms(50, [&] { perpo::compute_loss(in, config).loss.backward(); });
      std::printf("  %-7s B=%2d N=%2d: %7.3f ms fwd+bwd\n", name, lists, answers, ms);
    }
  }
  return 0;
}
