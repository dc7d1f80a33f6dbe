// perpo bench: option checks and perpo's own measurements (training step and sampling); the
// Python peer lives in bench_peer.cpp, the report in bench_report.cpp. Both families run the same
// code: the model is a VisionLanguageModel (vlm.h), the image goes through its prepare_image and
// join_images (as list_tensors and the sampler do), the step through score_list (the trainer's).
#include <ATen/record_function.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <thread>

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
#include "perpo/model/qwen2_5_vl.h"
#include "perpo/runtime/op_profile.h"
#include "perpo/runtime/runtime.h"
#include "perpo/train/optimizer.h"
#include "perpo/train/train_data.h"

namespace perpo {

namespace {

using bench_detail::peak_memory_mib;
using bench_detail::reset_peak_memory;
using bench_detail::synchronize;

/// --busy-cores: child processes that spin until this object goes, as another job would keep
/// cores busy. Each child dies with its parent too (PR_SET_PDEATHSIG).
class BusyLoad {
 public:
  explicit BusyLoad(int processes) {
    for (int i = 0; i < processes; ++i) {
      const pid_t pid = fork();
      if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        volatile unsigned long spins = 0;
        for (;;) spins = spins + 1;  // only async-signal-safe work after fork: none at all
      }
      if (pid < 0) {
        const int error = errno;
        stop();
        throw runtime_error("--busy-cores: could not start a busy-loop process: ",
                            std::strerror(error));
      }
      pids_.push_back(pid);
    }
    if (processes > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));  // scheduled
  }
  BusyLoad(const BusyLoad&) = delete;
  BusyLoad& operator=(const BusyLoad&) = delete;
  ~BusyLoad() { stop(); }

 private:
  void stop() {
    for (pid_t pid : pids_) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    pids_.clear();
  }
  std::vector<pid_t> pids_;
};

/// The one-minute load average of /proc/loadavg; -1 where it cannot be read.
double load_average() {
  std::ifstream in("/proc/loadavg");
  double one_minute = -1;
  if (!(in >> one_minute)) return -1;
  return one_minute;
}

struct PhaseFigures {
  double seconds_per_list = 0;
  double peak_mib = 0;
};

/// Seconds per call of `call` after one warm-up call, and the peak memory of the timed calls; with
/// `profile`, then runs as many more calls under OpProfile and writes its tables there.
PhaseFigures time_phase(const c10::Device& device, int iterations,
                        const std::function<void()>& call, std::string* profile) {
  call();  // warm-up: allocations, optimizer state, kernel selection
  synchronize(device);
  reset_peak_memory(device);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) call();
  synchronize(device);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const PhaseFigures figures{seconds / iterations, peak_memory_mib(device)};
  if (profile != nullptr) {
    OpProfile op_profile;
    for (int i = 0; i < iterations; ++i) call();
    synchronize(device);
    op_profile.stop();
    *profile = op_profile.table(iterations);
  }
  return figures;
}

/// Refuses a shape whose weights, gradients and optimizer state do not fit the device.
void check_fits(const BenchShape& shape, const c10::Device& device, c10::ScalarType dtype) {
  const int dtype_bytes = dtype == c10::kFloat ? 4 : 2;
  const std::uint64_t state = train_state_bytes(shape, dtype_bytes);
  const std::uint64_t build = bench_model_size(shape).fp32_bytes;  // built in fp32 on the host
  const auto host = available_memory_bytes();
  const std::uint64_t host_need = device.is_cuda() ? build : std::max(build, state);
  if (host && host_need > *host) {
    throw input_error("perpo bench --shape ", shape.name, " needs about ", format_bytes(host_need),
                      " of host memory (weights, gradients and AdamW state), but ",
                      format_bytes(*host), " is available")
        .hint(device.is_cuda() ? "free host memory"
                               : "use --device cuda, or a smaller shape; --plan prints the "
                                 "shape's figures without building it");
  }
  const std::uint64_t gpu = bench_detail::cuda_total_bytes(device);
  if (device.is_cuda() && gpu > 0 && state > gpu) {
    throw input_error("perpo bench --shape ", shape.name, " needs about ", format_bytes(state),
                      " on ", device.str(), " (weights, gradients and AdamW state), but it has ",
                      format_bytes(gpu))
        .hint(dtype == c10::kFloat ? "use --dtype bf16" : "use a GPU with more memory");
  }
}

/// The shape's model with random weights: the one place the bench picks a family's module.
std::shared_ptr<VisionLanguageModel> build_model(const BenchShape& shape) {
  if (shape.is_qwen()) return std::make_shared<Qwen2_5VLModelImpl>(shape.qwen);
  return std::make_shared<LlavaModelImpl>(shape.llava);
}

/// The bench's prompt: P random text ids with the family's image block at position 1
/// (bench_image_block), and a random square image of the shape's side in the family's form.
struct BenchPrompt {
  std::vector<std::int64_t> ids;  // (P)
  ModelImage image;               // prepare_image's: CPU float32, one image (vlm.h)
};

BenchPrompt bench_prompt(const VisionLanguageModel& model, const BenchShape& shape) {
  BenchPrompt prompt;
  const std::int64_t P = shape.prompt_tokens;
  const torch::Tensor ids = torch::randint(3, bench_text_id_limit(shape), {P}, torch::kInt64);
  prompt.ids.assign(ids.data_ptr<std::int64_t>(), ids.data_ptr<std::int64_t>() + P);
  const std::vector<std::int64_t> block = bench_image_block(shape);
  PERPO_CHECK(static_cast<std::int64_t>(block.size()) < P, "bench shape ", shape.name, ": P = ", P,
              " cannot hold its image block of ", block.size(), " tokens");
  std::copy(block.begin(), block.end(), prompt.ids.begin() + 1);
  const int side = shape.image_side;
  const torch::Tensor bytes = torch::randint(0, 256, {side * side * 3}, torch::kUInt8);
  RgbImage image;
  image.width = side;
  image.height = side;
  image.pixels.assign(bytes.data_ptr<std::uint8_t>(),
                      bytes.data_ptr<std::uint8_t>() + bytes.numel());
  ImageConfig image_config;  // CLIP mean / std; Qwen2.5-VL resizes within its min / max pixels
  image_config.size = side;  // LLaVA: the tower's input side
  model.check_image_config(image_config);
  prompt.image = model.prepare_image(image, image_config);
  return prompt;
}

/// The list of a training step: the prompt with its image joined as list_tensors does, N answers
/// of T tokens, rewards and cached reference log-probs.
ListTensors bench_list(VisionLanguageModel& model, const BenchShape& shape,
                       const BenchPrompt& prompt, const c10::Device& device,
                       c10::ScalarType dtype) {
  const std::int64_t P = shape.prompt_tokens, N = shape.answers, T = shape.answer_tokens;
  const auto ids = torch::TensorOptions().dtype(torch::kInt64).device(device);
  ListTensors list;
  list.prefix_ids = torch::tensor(prompt.ids, torch::kInt64).unsqueeze(0).to(device);  // (1, P)
  const ModelImage image =
      model.join_images({prompt.image}).to(torch::TensorOptions().device(device).dtype(dtype));
  list.pixel_values = image.pixel_values;  // LLaVA (1, 3, H, W); Qwen2.5-VL (S, 1176)
  list.grid_thw = image.grid_thw;          // Qwen2.5-VL (1, 3); LLaVA undefined
  list.answer_ids = torch::randint(3, bench_text_id_limit(shape), {N, T}, ids);  // (N, T)
  list.answer_mask = torch::ones({N, T}, ids);                                   // (N, T)
  list.rewards = torch::rand({N}).to(device);                                    // (N)
  list.ref_logps = (-20 - 10 * torch::rand({N})).to(device);                     // (N) cached
  list.answers = N;
  list.tokens = P + N * T;
  return list;
}

PhaseFigures measure_train(VisionLanguageModel& model, const BenchShape& shape,
                           const BenchPrompt& prompt, const c10::Device& device,
                           c10::ScalarType dtype, int iterations, std::string* profile) {
  set_trainable(model, /*vision=*/false, /*projector=*/true, /*llm=*/true);
  model.train();
  OptimConfig optim_config;
  optim_config.lr = 1e-5;
  AdamW optim(model.named_parameters(), optim_config);
  const LossConfig loss_config;  // perpo, beta 0.1, gamma 0.5
  const ListTensors list = bench_list(model, shape, prompt, device, dtype);
  // The trainer's parts, named as in Trainer::step for OpProfile.
  const auto train_step = [&] {
    RECORD_USER_SCOPE("step");
    ListLogps logps;
    {
      RECORD_USER_SCOPE("score_list");
      logps = score_list(model, list);
    }
    ListwiseInputs in;
    in.policy_logps = logps.answers.unsqueeze(0);  // (1, N)
    in.answer_tokens = logps.tokens.unsqueeze(0);  // (1, N)
    in.rewards = list.rewards.unsqueeze(0);        // (1, N)
    in.ref_logps = list.ref_logps.unsqueeze(0);    // (1, N)
    LossOutput out;
    {
      RECORD_USER_SCOPE("loss");
      out = compute_loss(in, loss_config);
    }
    {
      RECORD_USER_SCOPE("backward");
      out.loss.backward();
    }
    {
      RECORD_USER_SCOPE("clip");
      clip_grad_norm(optim.params(), 1.0);
    }
    {
      RECORD_USER_SCOPE("optimizer");
      optim.step();
    }
    {
      RECORD_USER_SCOPE("zero_grad");
      optim.zero_grad();
    }
  };
  return time_phase(device, iterations, train_step, profile);
}

PhaseFigures measure_sampling(VisionLanguageModel& model, const BenchShape& shape,
                              const BenchPrompt& bench_prompt, const c10::Device& device,
                              int iterations, std::string* profile) {
  for (auto& parameter : model.parameters()) parameter.mutable_grad() = at::Tensor();
  GenerationPrompt prompt;
  prompt.prompt_ids.assign(bench_prompt.ids.begin(), bench_prompt.ids.end());
  prompt.pixel_values = bench_prompt.image.pixel_values;
  prompt.grid_thw = bench_prompt.image.grid_thw;
  for (std::int64_t n = 0; n < shape.answers; ++n) prompt.seeds.push_back(answer_seed(1, n));
  prompt.name = "bench prompt";
  GenerationOptions options;
  options.max_new_tokens = static_cast<int>(shape.sampled_tokens);  // no stop id: all G tokens
  const std::vector<GenerationPrompt> prompts = {prompt};
  const auto sample_list = [&] {
    RECORD_USER_SCOPE("sample");
    generate(model, prompts, options);
  };
  return time_phase(device, iterations, sample_list, profile);
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
  if (options.busy_cores < 0 || options.busy_cores > 64) {
    throw input_error("--busy-cores must be in [0, 64], got ", options.busy_cores)
        .hint("e.g. --busy-cores 1: one busy-loop process beside the benchmark");
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
  report.commit = build_commit();
  report.device_name = bench_detail::device_name(device);
  // What the shape is, before anything is built: its size, state and FLOPs.
  const ModelSize size = bench_model_size(shape);
  const int dtype_bytes = dtype == c10::kFloat ? 4 : 2;
  add(report, "model.parameters", static_cast<double>(size.parameters), "parameters");
  add(report, "model.trained_parameters", static_cast<double>(bench_trained_parameters(shape)),
      "parameters");
  add(report, "train.state_memory_estimate",
      static_cast<double>(train_state_bytes(shape, dtype_bytes)) / (1024.0 * 1024.0), "MiB");
  const double train_flops = train_step_flops(shape).total();
  const double sample_flops = sampling_flops(shape).total();
  add(report, "train.flops_per_step", train_flops, "FLOP");
  add(report, "sample.flops_per_list", sample_flops, "FLOP");
  if (options.plan) {
    report.notes.push_back("plan only (--plan): no model built, nothing timed");
    try {
      check_fits(shape, device, dtype);
      report.notes.push_back("a run on " + report.device_name +
                             " here would pass the memory check (weights, gradients and AdamW "
                             "state; activations come on top)");
    } catch (const Error& error) {
      report.notes.push_back("a run on " + report.device_name +
                             " here would be refused: " + error.message());
    }
    if (!bench_detail::peer_runs(shape)) report.notes.push_back(bench_detail::no_peer_note(shape));
    return report;
  }
  check_fits(shape, device, dtype);
  // The peer is found and its Python checked before perpo measures anything: a peer that cannot
  // run is an error (exit 1), not a report without the peer's figures. A shape of a family the
  // peer does not run has none, and the report says so.
  const bool with_peer = options.peer && bench_detail::peer_runs(shape);
  bench_detail::PeerProgram peer_program;
  if (with_peer) peer_program = bench_detail::find_peer(options.python);
  // The load before the thread choice, as a user's machine would have it (auto reads it).
  BusyLoad busy(options.busy_cores);
  add(report, "machine.busy_cores_added", options.busy_cores, "cores");
  add(report, "machine.busy_cores_elsewhere", busy_cores_elsewhere(std::chrono::milliseconds(100)),
      "cores");
  add(report, "machine.loadavg_start", load_average(), "load");
  const int threads = set_threads(options.threads);
  report.peak_tflops = options.peak_tflops > 0
                           ? std::optional<double>(options.peak_tflops)
                           : known_peak_tflops(report.device_name, options.dtype);
  if (!device.is_cuda()) report.device_name += ", threads " + std::to_string(threads);

  torch::manual_seed(0);
  PERPO_LOG_INFO("bench: building the ", shape.name, " model (", format_bytes(size.fp32_bytes),
                 " in fp32)");
  std::shared_ptr<VisionLanguageModel> model = build_model(shape);
  model->to(device, dtype);
  const BenchPrompt prompt = bench_prompt(*model, shape);
  PERPO_LOG_INFO("bench: training step, ", options.iterations, " iterations");
  const PhaseFigures train = measure_train(*model, shape, prompt, device, dtype, options.iterations,
                                           options.profile ? &report.profile : nullptr);
  PERPO_LOG_INFO("bench: sampling, ", options.iterations, " iterations");
  const PhaseFigures sample = measure_sampling(*model, shape, prompt, device, options.iterations,
                                               options.profile ? &report.sample_profile : nullptr);

  const double list_tokens = shape.prompt_tokens + shape.answers * shape.answer_tokens;
  const double sampled = static_cast<double>(shape.answers) * shape.sampled_tokens;
  add(report, "train.lists_per_s", 1 / train.seconds_per_list, "lists/s");
  add(report, "train.tokens_per_s", list_tokens / train.seconds_per_list, "tokens/s");
  add(report, "train.peak_memory", train.peak_mib, "MiB");
  add(report, "train.tflops_per_s", train_flops / train.seconds_per_list / 1e12, "TFLOP/s");
  if (report.peak_tflops) {
    add(report, "train.mfu",
        100 * train_flops / train.seconds_per_list / 1e12 / *report.peak_tflops, "%");
  }
  add(report, "sample.lists_per_s", 1 / sample.seconds_per_list, "lists/s");
  add(report, "sample.tokens_per_s", sampled / sample.seconds_per_list, "tokens/s");
  add(report, "sample.peak_memory", sample.peak_mib, "MiB");
  add(report, "sample.tflops_per_s", sample_flops / sample.seconds_per_list / 1e12, "TFLOP/s");
  if (report.peak_tflops) {
    add(report, "sample.mfu",
        100 * sample_flops / sample.seconds_per_list / 1e12 / *report.peak_tflops, "%");
  }
  model = nullptr;  // frees the weights before the peer starts

  if (!options.peer || !with_peer) {
    report.notes.push_back(options.peer ? bench_detail::no_peer_note(shape)
                                        : "peer skipped (--no-peer)");
    add(report, "machine.loadavg_end", load_average(), "load");
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
  add(report, "machine.loadavg_end", load_average(), "load");
  return report;
}

}  // namespace perpo
