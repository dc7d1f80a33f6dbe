// perpo bench: option checks and perpo's own measurements (training step and sampling); the
// Python peer lives in bench_peer.cpp, the report in bench_report.cpp.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>

#include "bench_device.h"
#include "bench_peer.h"
#include "perpo/bench/bench.h"
#include "perpo/config/config.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/generate/generator.h"
#include "perpo/loss/objectives.h"
#include "perpo/model/llava.h"
#include "perpo/model/lora.h"
#include "perpo/model/model_size.h"
#include "perpo/runtime/runtime.h"
#include "perpo/train/optimizer.h"
#include "perpo/train/train_data.h"

namespace perpo {

namespace {

using bench_detail::peak_memory_mib;
using bench_detail::reset_peak_memory;
using bench_detail::synchronize;

struct PhaseFigures {
  double seconds_per_list = 0;
  double peak_mib = 0;
};

/// Seconds per call of `call` after one warm-up call, and the peak memory of the timed calls.
PhaseFigures time_phase(const c10::Device& device, int iterations,
                        const std::function<void()>& call) {
  call();  // warm-up: allocations, optimizer state, kernel selection
  synchronize(device);
  reset_peak_memory(device);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) call();
  synchronize(device);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {seconds / iterations, peak_memory_mib(device)};
}

/// Refuses a shape whose weights, gradients and optimizer state do not fit the device.
void check_fits(const BenchShape& shape, const c10::Device& device, c10::ScalarType dtype) {
  const int dtype_bytes = dtype == c10::kFloat ? 4 : 2;
  const std::uint64_t state = train_state_bytes(shape.model, dtype_bytes);
  const std::uint64_t build = model_size(shape.model).fp32_bytes;  // built in fp32 on the host
  const auto host = available_memory_bytes();
  const std::uint64_t host_need = device.is_cuda() ? build : std::max(build, state);
  if (host && host_need > *host) {
    throw input_error("perpo bench --shape ", shape.name, " needs about ", format_bytes(host_need),
                      " of host memory (weights, gradients and AdamW state), but ",
                      format_bytes(*host), " is available")
        .hint(device.is_cuda() ? "free host memory" : "use --device cuda, or --shape small");
  }
  const std::uint64_t gpu = bench_detail::cuda_total_bytes(device);
  if (device.is_cuda() && gpu > 0 && state > gpu) {
    throw input_error("perpo bench --shape ", shape.name, " needs about ", format_bytes(state),
                      " on ", device.str(), " (weights, gradients and AdamW state), but it has ",
                      format_bytes(gpu))
        .hint(dtype == c10::kFloat ? "use --dtype bf16" : "use a GPU with more memory");
  }
}

/// The list of a training step: P prompt tokens with the image's tokens at position 1, N answers
/// of T tokens, rewards and cached reference log-probs.
ListTensors bench_list(const BenchShape& shape, const c10::Device& device, c10::ScalarType dtype) {
  const ModelConfig& config = shape.model;
  const std::int64_t P = shape.prompt_tokens, N = shape.answers, T = shape.answer_tokens;
  const std::int64_t vocab_top =
      std::min<std::int64_t>(config.text.vocab_size, config.image_token_index);
  const auto ids = torch::TensorOptions().dtype(torch::kInt64).device(device);
  ListTensors list;
  list.prefix_ids = torch::randint(3, vocab_top, {1, P}, ids);  // (1, P)
  list.prefix_ids.narrow(1, 1, config.image_tokens()).fill_(config.image_token_index);
  const int side = config.vision.image_size;
  list.pixel_values = torch::randn({1, 3, side, side}).to(device, dtype);  // (1, 3, H, W)
  list.answer_ids = torch::randint(3, vocab_top, {N, T}, ids);             // (N, T)
  list.answer_mask = torch::ones({N, T}, ids);                             // (N, T)
  list.rewards = torch::rand({N}).to(device);                              // (N)
  list.ref_logps = (-20 - 10 * torch::rand({N})).to(device);               // (N) cached
  list.answers = N;
  list.tokens = P + N * T;
  return list;
}

PhaseFigures measure_train(VisionLanguageModel& model, const BenchShape& shape,
                           const c10::Device& device, c10::ScalarType dtype, int iterations) {
  set_trainable(model, /*vision=*/false, /*projector=*/true, /*llm=*/true);
  model.train();
  OptimConfig optim_config;
  optim_config.lr = 1e-5;
  AdamW optim(model.named_parameters(), optim_config);
  const LossConfig loss_config;  // perpo, beta 0.1, gamma 0.5
  const ListTensors list = bench_list(shape, device, dtype);
  return time_phase(device, iterations, [&] {
    ListLogps logps = score_list(model, list);
    ListwiseInputs in;
    in.policy_logps = logps.answers.unsqueeze(0);  // (1, N)
    in.answer_tokens = logps.tokens.unsqueeze(0);  // (1, N)
    in.rewards = list.rewards.unsqueeze(0);        // (1, N)
    in.ref_logps = list.ref_logps.unsqueeze(0);    // (1, N)
    compute_loss(in, loss_config).loss.backward();
    clip_grad_norm(optim.params(), 1.0);
    optim.step();
    optim.zero_grad();
  });
}

PhaseFigures measure_sampling(VisionLanguageModel& model, const BenchShape& shape,
                              const c10::Device& device, int iterations) {
  for (auto& parameter : model.parameters()) parameter.mutable_grad() = at::Tensor();
  const ModelConfig& config = shape.model;
  GenerationPrompt prompt;
  const std::int64_t vocab_top =
      std::min<std::int64_t>(config.text.vocab_size, config.image_token_index);
  torch::Tensor ids = torch::randint(3, vocab_top, {shape.prompt_tokens}, torch::kInt64);
  ids.narrow(0, 1, config.image_tokens()).fill_(config.image_token_index);
  prompt.prompt_ids.assign(ids.data_ptr<std::int64_t>(),
                           ids.data_ptr<std::int64_t>() + shape.prompt_tokens);
  prompt.pixel_values = torch::randn({3, config.vision.image_size, config.vision.image_size});
  for (std::int64_t n = 0; n < shape.answers; ++n) prompt.seeds.push_back(answer_seed(1, n));
  prompt.name = "bench prompt";
  GenerationOptions options;
  options.max_new_tokens = static_cast<int>(shape.sampled_tokens);  // no stop id: all G tokens
  const std::vector<GenerationPrompt> prompts = {prompt};
  return time_phase(device, iterations, [&] { generate(model, prompts, options); });
}

void add(BenchReport& report, std::string name, double value, std::string unit) {
  report.figures.push_back({std::move(name), value, std::move(unit)});
}

}  // namespace

BenchShape checked_bench_shape(const BenchOptions& options) {
  BenchShape shape = bench_shape(options.shape);
  if (options.answers != -1) {
    if (options.answers < 2 || options.answers > 4096) {
      throw input_error(
          "--answers must be between 2 and 4096 (a list needs two answers to "
          "compare), got ",
          options.answers)
          .hint("e.g. --answers 20");
    }
    shape.answers = options.answers;
  }
  if (options.iterations < 1) {
    throw input_error("--iterations must be >= 1, got ", options.iterations).hint("e.g. 3");
  }
  if (options.threads < 0) {
    throw input_error("--threads must be >= 0 (0 = auto), got ", options.threads);
  }
  if (!(std::isfinite(options.peak_tflops) && options.peak_tflops >= 0)) {
    throw input_error("--peak-tflops must be a positive number of TFLOP/s, got ",
                      options.peak_tflops)
        .hint("e.g. --peak-tflops 989 for an H100 in bf16");
  }
  if (options.dtype != "fp32" && options.dtype != "bf16") {
    throw input_error("unknown --dtype '", options.dtype, "' for perpo bench")
        .hint("use fp32 or bf16");
  }
  parse_device(options.device);  // unknown device, or CUDA without a GPU
  return shape;
}

BenchReport run_bench(const BenchOptions& options) {
  BenchReport report;
  report.options = options;
  report.shape = checked_bench_shape(options);
  const BenchShape& shape = report.shape;
  const c10::Device device = parse_device(options.device);
  const c10::ScalarType dtype = parse_dtype(options.dtype);
  check_fits(shape, device, dtype);
  // The peer is found and its Python checked before perpo measures anything: a peer that cannot
  // run is an error (exit 1), not a report without the peer's figures.
  bench_detail::PeerProgram peer_program;
  if (options.peer) peer_program = bench_detail::find_peer(options.python);
  const int threads = set_threads(options.threads);
  report.commit = build_commit();
  report.device_name = bench_detail::device_name(device);
  report.peak_tflops = options.peak_tflops > 0
                           ? std::optional<double>(options.peak_tflops)
                           : known_peak_tflops(report.device_name, options.dtype);
  if (!device.is_cuda()) report.device_name += ", threads " + std::to_string(threads);

  torch::manual_seed(0);
  PERPO_LOG_INFO("bench: building the ", shape.name, " model (",
                 format_bytes(model_size(shape.model).fp32_bytes), " in fp32)");
  LlavaModel model(shape.model);
  model->to(device, dtype);
  PERPO_LOG_INFO("bench: training step, ", options.iterations, " iterations");
  const PhaseFigures train = measure_train(*model, shape, device, dtype, options.iterations);
  PERPO_LOG_INFO("bench: sampling, ", options.iterations, " iterations");
  const PhaseFigures sample = measure_sampling(*model, shape, device, options.iterations);

  const double list_tokens = shape.prompt_tokens + shape.answers * shape.answer_tokens;
  const double sampled = static_cast<double>(shape.answers) * shape.sampled_tokens;
  const double train_flops = train_step_flops(shape).total();
  const double sample_flops = sampling_flops(shape).total();
  add(report, "train.lists_per_s", 1 / train.seconds_per_list, "lists/s");
  add(report, "train.tokens_per_s", list_tokens / train.seconds_per_list, "tokens/s");
  add(report, "train.peak_memory", train.peak_mib, "MiB");
  add(report, "train.flops_per_step", train_flops, "FLOP");
  add(report, "train.tflops_per_s", train_flops / train.seconds_per_list / 1e12, "TFLOP/s");
  if (report.peak_tflops) {
    add(report, "train.mfu",
        100 * train_flops / train.seconds_per_list / 1e12 / *report.peak_tflops, "%");
  }
  add(report, "sample.lists_per_s", 1 / sample.seconds_per_list, "lists/s");
  add(report, "sample.tokens_per_s", sampled / sample.seconds_per_list, "tokens/s");
  add(report, "sample.peak_memory", sample.peak_mib, "MiB");
  add(report, "sample.flops_per_list", sample_flops, "FLOP");
  add(report, "sample.tflops_per_s", sample_flops / sample.seconds_per_list / 1e12, "TFLOP/s");
  if (report.peak_tflops) {
    add(report, "sample.mfu",
        100 * sample_flops / sample.seconds_per_list / 1e12 / *report.peak_tflops, "%");
  }
  model = nullptr;  // frees the weights before the peer starts

  if (!options.peer) {
    report.notes.push_back("peer skipped (--no-peer)");
    return report;
  }
  const bench_detail::PeerRequest request{shape,   options.device,     options.dtype,
                                          threads, options.iterations, peer_program};
  const bench_detail::PeerFigures peer = bench_detail::run_peer(request, report.notes);
  if (peer.train_seconds_per_list > 0) {
    add(report, "peer.train.lists_per_s", 1 / peer.train_seconds_per_list, "lists/s");
    add(report, "peer.train.tokens_per_s", list_tokens / peer.train_seconds_per_list, "tokens/s");
    if (peer.train_peak_mib > 0) add(report, "peer.train.peak_memory", peer.train_peak_mib, "MiB");
    add(report, "ratio.train.lists_per_s", peer.train_seconds_per_list / train.seconds_per_list,
        "x");
  }
  if (peer.sample_seconds_per_list > 0) {
    add(report, "peer.sample.lists_per_s", 1 / peer.sample_seconds_per_list, "lists/s");
    add(report, "peer.sample.tokens_per_s", sampled / peer.sample_seconds_per_list, "tokens/s");
    if (peer.sample_peak_mib > 0) {
      add(report, "peer.sample.peak_memory", peer.sample_peak_mib, "MiB");
    }
    add(report, "ratio.sample.tokens_per_s", peer.sample_seconds_per_list / sample.seconds_per_list,
        "x");
  }
  return report;
}

}  // namespace perpo
