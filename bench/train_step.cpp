// Lists per second of a PerPO training step: perpo's engine (prefix once, N answers on its
// keys/values, reference log-probs read from the list, AdamW) against the authors' computation in
// Python (bench/train_step_peer.py: image + prompt repeated N times, a live reference forward every
// step), same model shape and threads, run one after the other by this program.
//
//   build/bench/bench_train_step [iterations=3] [threads=2] [shape=bench|image576]
// Both wall-clock and CPU-time figures are printed: on a shared machine the CPU-time ratio is
// the fairer one (wall time there depends on what else runs).
//   env: PERPO_PYTHON (default .venv/bin/python), PERPO_BENCH_PEER (the script; default beside
//   this source file), PERPO_BENCH_NO_PEER=1 to skip the Python side, PERPO_BENCH_TRACE=FILE to
//   write one step's operator trace (LibTorch's legacy profiler, chrome-trace JSON) to FILE,
//   PERPO_ATTENTION=sdpa|reference to choose the attention (default on CPU: reference).
//
// Shapes (vision: CLIP hidden 64, 2 layers; decoder: LLaMA hidden 256, 4 layers, 4 heads, 2 kv
// heads, MLP 688, vocab 1000; N = 20 answers of T = 15 tokens; full fine-tuning, fp32):
//   bench     32x32 image, patch 8 (16 image tokens), prompt P = 600 tokens
//   image576  336x336 image, patch 14 (576 image tokens), prompt P = 620 tokens
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>

#include "perpo/config/config.h"
#include "perpo/loss/objectives.h"
#include "perpo/model/llava.h"
#include "perpo/train/optimizer.h"
#include "perpo/train/train_data.h"

namespace {

struct Shape {
  int image_size, patch, prompt, answers, answer_tokens;
};

perpo::ModelConfig model_config(const Shape& shape) {
  perpo::ModelConfig config;
  config.vision.hidden_size = 64;
  config.vision.intermediate_size = 256;
  config.vision.num_hidden_layers = 2;
  config.vision.num_attention_heads = 4;
  config.vision.image_size = shape.image_size;
  config.vision.patch_size = shape.patch;
  config.vision.hidden_act = "quick_gelu";
  config.text.vocab_size = 1000;
  config.text.hidden_size = 256;
  config.text.intermediate_size = 688;
  config.text.num_hidden_layers = 4;
  config.text.num_attention_heads = 4;
  config.text.num_key_value_heads = 2;
  config.image_token_index = 999;
  return config;
}

struct PeerFigures {
  double lists_per_s = 0;
  double cpu_s_per_list = 0;  // process CPU seconds (all threads) per list
};

PeerFigures run_peer(const std::string& shape, int threads, int iterations) {
  const char* python = std::getenv("PERPO_PYTHON");
  const char* peer = std::getenv("PERPO_BENCH_PEER");
  // __FILE__ may be relative to the build folder (ccache's base_dir): resolve it from there.
  std::filesystem::path source = __FILE__;
  if (source.is_relative()) {
    source = std::filesystem::canonical("/proc/self/exe").parent_path().parent_path() / source;
  }
  std::string script = peer ? peer : (source.parent_path() / "train_step_peer.py").string();
  std::string command = std::string(python ? python : ".venv/bin/python") + " " + script +
                        " --shape " + shape + " --threads " + std::to_string(threads) +
                        " --iterations " + std::to_string(iterations) + " 2>&1";
  std::printf("peer: %s\n", command.c_str());
  std::fflush(stdout);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return {};
  char line[4096];
  PeerFigures figures;
  while (std::fgets(line, sizeof(line), pipe)) {
    std::fputs(line, stdout);
    if (const char* at = std::strstr(line, "lists_per_s="))
      figures.lists_per_s = std::atof(at + 12);
    if (const char* at = std::strstr(line, "cpu_s_per_list=")) {
      figures.cpu_s_per_list = std::atof(at + 15);
    }
  }
  ::pclose(pipe);
  return figures;
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 3;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const std::string shape_name = argc > 3 ? argv[3] : "bench";
  const Shape shape =
      shape_name == "image576" ? Shape{336, 14, 620, 20, 15} : Shape{32, 8, 600, 20, 15};
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  perpo::ModelConfig config = model_config(shape);
  perpo::LlavaModel model(config);
  model->train();
  perpo::OptimConfig optim_config;
  optim_config.lr = 1e-5;
  perpo::AdamW optim(model->named_parameters(), optim_config);
  perpo::LossConfig loss_config;  // perpo, beta 0.1, gamma 0.5

  const int image_tokens = config.image_tokens();
  const std::int64_t P = shape.prompt, N = shape.answers, T = shape.answer_tokens;
  perpo::ListTensors list;
  list.prefix_ids = torch::randint(1, 999, {1, P}, torch::kInt64);
  list.prefix_ids.narrow(1, 10, image_tokens).fill_(config.image_token_index);
  list.pixel_values = torch::randn({1, 3, shape.image_size, shape.image_size});
  list.answer_ids = torch::randint(1, 999, {N, T}, torch::kInt64);
  list.answer_mask = torch::ones({N, T}, torch::kInt64);
  list.rewards = torch::rand({N});
  list.ref_logps = -20 - 10 * torch::rand({N});  // read from the list: no reference forward
  list.answers = N;

  auto step = [&] {
    perpo::ListLogps logps = perpo::score_list(*model, list);
    perpo::ListwiseInputs in;
    in.policy_logps = logps.answers.unsqueeze(0);
    in.answer_tokens = logps.tokens.unsqueeze(0);
    in.rewards = list.rewards.unsqueeze(0);
    in.ref_logps = list.ref_logps.unsqueeze(0);
    perpo::compute_loss(in, loss_config).loss.backward();
    perpo::clip_grad_norm(optim.params(), 1.0);
    optim.step();
    optim.zero_grad();
  };
  // On a machine shared with other work, OpenMP's spinning wait (the default) costs perpo's many
  // small operations far more than the peer's large ones: print it with the figures.
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  std::printf(
      "shape %s: %d image tokens, prompt P=%lld, N=%lld answers x T=%lld tokens; "
      "threads %d; %d iterations; OMP_WAIT_POLICY=%s\n",
      shape_name.c_str(), image_tokens, static_cast<long long>(P), static_cast<long long>(N),
      static_cast<long long>(T), threads, iterations, wait_policy ? wait_policy : "(unset)");
  step();  // warm-up
  if (const char* trace = std::getenv("PERPO_BENCH_TRACE")) {
    torch::autograd::profiler::RecordProfile guard(trace);
    step();
  }
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = std::clock() / static_cast<double>(CLOCKS_PER_SEC);
  for (int i = 0; i < iterations; ++i) step();
  const double per_list =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iterations;
  const double cpu_per_list =
      (std::clock() / static_cast<double>(CLOCKS_PER_SEC) - cpu_start) / iterations;
  std::printf("perpo lists_per_s=%.4f s_per_list=%.4f cpu_s_per_list=%.4f\n", 1.0 / per_list,
              per_list, cpu_per_list);
  std::fflush(stdout);
  if (std::getenv("PERPO_BENCH_NO_PEER")) return 0;
  const PeerFigures peer = run_peer(shape_name, threads, iterations);
  if (peer.lists_per_s > 0) {
    std::printf("speed-up, wall clock (perpo / peer lists/s): %.2fx\n",
                (1.0 / per_list) / peer.lists_per_s);
    std::printf("speed-up, CPU time (peer / perpo CPU s per list): %.2fx\n",
                peer.cpu_s_per_list / cpu_per_list);
  }
  return 0;
}
