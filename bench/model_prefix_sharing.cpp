// Forward+backward throughput of N short answers sharing one long prompt (a PerPO list):
// prefix sharing (prompt once, answers against its keys/values) vs repeating the prompt per answer.
//
//   ./build-modules/bench/bench_model_prefix_sharing [iterations=3] [threads=0 (LibTorch default)]
//
// Small CPU config: CLIP 2 layers (hidden 64, 32x32 image, 16 patches), LLaMA hidden 256, 4 layers,
// 4 heads (2 key/value heads), vocab 1000; prompt P = 600 tokens (16 of them image tokens),
// N = 20 answers of T = 15 tokens. "answer tokens/s" counts the N*T scored tokens per second.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "model_reference.h"
#include "perpo/model/llava.h"

namespace {

perpo::ModelConfig bench_config() {
  perpo::ModelConfig config;
  config.vision.hidden_size = 64;
  config.vision.intermediate_size = 128;
  config.vision.num_hidden_layers = 2;
  config.vision.num_attention_heads = 4;
  config.vision.image_size = 32;
  config.vision.patch_size = 8;
  config.text.vocab_size = 1000;
  config.text.hidden_size = 256;
  config.text.intermediate_size = 688;
  config.text.num_hidden_layers = 4;
  config.text.num_attention_heads = 4;
  config.text.num_key_value_heads = 2;
  config.image_token_index = 999;
  return config;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 3;
  if (argc > 2 && std::atoi(argv[2]) > 0) torch::set_num_threads(std::atoi(argv[2]));
  const std::int64_t P = 600, N = 20, T = 15;
  torch::manual_seed(0);
  perpo::ModelConfig config = bench_config();
  perpo::LlavaModel model(config);
  model->train();

  const int image_tokens = config.image_tokens();
  torch::Tensor prompt = torch::randint(1, 999, {1, P}, torch::kInt64);
  prompt.narrow(1, 10, image_tokens).fill_(config.image_token_index);
  torch::Tensor pixels = torch::randn({1, 3, 32, 32});
  torch::Tensor answers = torch::randint(1, 999, {N, T}, torch::kInt64);
  torch::Tensor mask = torch::ones({N, T}, torch::kInt64);

  double prefix_s = 0, answers_s = 0, backward_s = 0;  // phases of the shared path, summed
  auto run_shared = [&] {
    auto start = std::chrono::steady_clock::now();
    perpo::PrefixState prefix = model->encode_prefix(prompt, pixels);
    prefix_s += seconds_since(start);
    start = std::chrono::steady_clock::now();
    torch::Tensor logps = model->answer_logps(prefix, answers, mask);
    answers_s += seconds_since(start);
    start = std::chrono::steady_clock::now();
    logps.sum().backward();
    backward_s += seconds_since(start);
  };
  auto run_repeated = [&] {
    perpo::test::answer_logps_repeated(*model, prompt, pixels, answers, mask).sum().backward();
  };
  auto measure = [&](const char* name, const std::function<void()>& step) {
    step();  // warm-up
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) {
      model->zero_grad();
      step();
    }
    const double per_list = seconds_since(start) / iterations;
    std::printf("%-16s %8.3f s/list  %9.1f answer tokens/s  %9.1f tokens processed/s\n", name,
                per_list, N * T / per_list,
                (name[0] == 'p' ? (P + N * T) : N * (P + T)) / per_list);
    return per_list;
  };

  std::printf(
      "LLaVA tiny-CPU config: text hidden 256, 4 layers; P=%lld prompt tokens, N=%lld answers "
      "x T=%lld tokens; threads=%d; %d iterations\n",
      static_cast<long long>(P), static_cast<long long>(N), static_cast<long long>(T),
      torch::get_num_threads(), iterations);
  const double shared = measure("prefix-sharing", run_shared);
  std::printf(
      "  shared phases per list: prefix forward %.3f s, answers forward %.3f s, backward %.3f s\n",
      prefix_s / (iterations + 1), answers_s / (iterations + 1), backward_s / (iterations + 1));
  const double repeated = measure("repeated-prefix", run_repeated);
  std::printf("speed-up (repeated / shared time): %.2fx\n", repeated / shared);
  return 0;
}
