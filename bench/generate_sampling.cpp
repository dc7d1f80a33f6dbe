// Sampled tokens/s for N answers on one long prompt: perpo's shared prompt (computed once, read by
// all N rows) vs each answer decoding its own copy of the prompt, vs transformers'
// generate(num_return_sequences=N) on the same model shape and threads (the Python script beside
// this file, run by this program).
//
//   ./build/bench/bench_generate_sampling [iterations=3] [threads=1] [python]
//   python: PERPO_PYTHON, else <source>/.venv/bin/python, else python3; "none" skips the peer.
//   (<source>: the first folder above the executable holding bench/generate_sampling_peer.py)
//
// Shape (as bench_model_prefix_sharing): CLIP 2 layers (hidden 64, 32x32 image, 16 image
// tokens), LLaMA hidden 256, 4 layers, 4 heads on 2 key/value heads, vocab 1000, random weights
// (std 0.02, as transformers' init); prompt P = 600 tokens; N = 20 answers of T = 16 tokens (no
// early stop); temperature 1. "tokens/s" counts the N*T sampled tokens per second of a whole list
// (prompt included). Then a list with its ref_logps, as `perpo sample` makes it: scored by
// running the prompt again (as before) vs on the sampling's keys/values (prompt_prefix).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "perpo/generate/generator.h"
#include "perpo/generate/list_logps.h"
#include "perpo/model/llava.h"

namespace {

constexpr int kPrompt = 600, kAnswers = 20, kNewTokens = 16;

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

double time_per_call(int iterations, const std::function<void()>& call) {
  call();  // warm-up
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) call();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
         iterations;
}

/// The source tree: the first folder above this executable that holds bench/<peer script>.
std::filesystem::path source_dir() {
  std::filesystem::path dir = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  for (; !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
    if (std::filesystem::exists(dir / "bench" / "generate_sampling_peer.py")) return dir;
  }
  return std::filesystem::current_path();
}

std::string default_python() {
  if (const char* env = std::getenv("PERPO_PYTHON")) return env;
  const auto venv = source_dir() / ".venv" / "bin" / "python";
  return std::filesystem::exists(venv) ? venv.string() : "python3";
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 3;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  const std::string python = argc > 3 ? argv[3] : default_python();
  if (threads > 0) torch::set_num_threads(threads);
  torch::manual_seed(0);
  perpo::LlavaModel model(bench_config());
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) {
      if (p.dim() >= 2) p.normal_(0.0, 0.02);
    }
  }
  model->eval();

  perpo::GenerationPrompt prompt;
  torch::Tensor ids = torch::randint(1, 999, {kPrompt}, torch::kInt64);
  ids.narrow(0, 10, 16).fill_(999);  // the image's 16 tokens
  prompt.prompt_ids.assign(ids.data_ptr<std::int64_t>(), ids.data_ptr<std::int64_t>() + kPrompt);
  prompt.pixel_values = torch::randn({3, 32, 32});
  perpo::GenerationOptions options;
  options.max_new_tokens = kNewTokens;  // no stop ids: every answer runs to T tokens

  std::vector<perpo::GenerationPrompt> shared = {prompt};
  std::vector<perpo::GenerationPrompt> copies;
  for (int n = 0; n < kAnswers; ++n) {
    shared[0].seeds.push_back(perpo::answer_seed(1, n));
    perpo::GenerationPrompt copy = prompt;
    copy.seeds = {perpo::answer_seed(1, n)};
    copies.push_back(copy);
  }
  const double tokens = static_cast<double>(kAnswers) * kNewTokens;
  std::printf("threads %d, prompt %d tokens, %d answers x %d tokens, %d iterations\n",
              torch::get_num_threads(), kPrompt, kAnswers, kNewTokens, iterations);
  perpo::GenerationStats stats;
  const double shared_s = time_per_call(iterations, [&] {
    stats = {};
    perpo::generate(*model, shared, options, &stats);
  });
  std::printf("perpo, shared prompt          %8.1f tokens/s  (%.3f s per list, %lld tokens)\n",
              tokens / shared_s, shared_s, static_cast<long long>(stats.generated_tokens));
  const double copies_s =
      time_per_call(iterations, [&] { perpo::generate(*model, copies, options); });
  std::printf("perpo, prompt copy per answer %8.1f tokens/s  (%.3f s per list)\n",
              tokens / copies_s, copies_s);
  std::printf("shared prompt / copies: %.2fx\n", copies_s / shared_s);

  // A list with ref_logps (`perpo sample`): sample, then score the answers. Before, the scoring
  // ran the prompt (image + text) again (list_logps from the ids); now it reads the keys/values
  // the answers were sampled from (prompt_prefix).
  const std::vector<std::int64_t> rows(kAnswers, 0);
  const std::vector<std::uint64_t> seeds = shared[0].seeds;
  perpo::ListExample example;
  example.prompt_ids = prompt.prompt_ids;
  const auto sample_list = [&] {
    perpo::EncodedPrompts encoded = perpo::encode_prompts(*model, shared, options);
    example.answer_ids.clear();
    for (auto& answer : perpo::decode_rows(*model, encoded, rows, seeds, options)) {
      example.answer_ids.push_back(std::move(answer.ids));
    }
    return encoded;
  };
  const double rerun_s = time_per_call(iterations, [&] {
    sample_list();
    perpo::list_logps(*model, example, prompt.pixel_values);
  });
  std::printf("perpo, list + ref_logps, prompt run again     %.3f s per list\n", rerun_s);
  const double reuse_s = time_per_call(iterations, [&] {
    perpo::EncodedPrompts encoded = sample_list();
    perpo::list_logps(*model, perpo::prompt_prefix(encoded, 0), example.answer_ids);
  });
  std::printf("perpo, list + ref_logps, sampling cache reused %.3f s per list\n", reuse_s);
  std::printf("prompt run again / cache reused: %.2fx\n", rerun_s / reuse_s);

  if (python == "none") return 0;
  const auto script = source_dir() / "bench" / "generate_sampling_peer.py";
  const std::string command = python + " " + script.string() + " --threads " +
                              std::to_string(torch::get_num_threads()) + " --iterations " +
                              std::to_string(iterations) + " 2>&1";
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) {
    std::printf("could not run %s\n", command.c_str());
    return 1;
  }
  char line[512];
  double peer_tokens_per_s = 0;
  while (std::fgets(line, sizeof(line), pipe)) {
    std::fputs(line, stdout);
    std::sscanf(line, "transformers tokens_per_s %lf", &peer_tokens_per_s);
  }
  ::pclose(pipe);
  if (peer_tokens_per_s <= 0) {
    std::printf("no figure from the transformers script\n");
    return 1;
  }
  std::printf("perpo shared prompt / transformers generate: %.2fx\n",
              tokens / shared_s / peer_tokens_per_s);
  return 0;
}
