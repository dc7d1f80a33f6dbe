// perpo bench [--shape S] [--device D] [--dtype T] [--plan] ...: training-step and sampling
// figures beside the Python peer's (S: tiny | small | 7b | qwen-tiny | qwen2.5-vl-3b |
// qwen2.5-vl-7b). The work is perpo::run_bench (bench/bench.h); this file only maps flags onto it.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "perpo/bench/bench.h"
#include "perpo/core/strings.h"

namespace perpo::cli {

void register_bench(CLI::App& app, CommandRegistry& registry) {
  auto* bench = app.add_subcommand(
      "bench", "Speed of a PerPO training step and of sampling, beside transformers (the peer)");
  bench->footer(
      "Random weights of a fixed shape: tiny (seconds on CPU), small (576 image tokens, about a\n"
      "minute on CPU), 7b (LLaVA-1.5-7B: CLIP ViT-L/14-336 + Vicuna-7B); qwen-tiny (seconds on\n"
      "CPU), qwen2.5-vl-3b, qwen2.5-vl-7b (the Instruct models, a 448 x 448 image: 256 merged\n"
      "tokens). A shape is refused when the device's memory cannot hold weights, gradients and\n"
      "AdamW state; --plan prints its parameters, that memory and its FLOPs without building it.\n"
      "Training step: prefix (image + prompt) once, N answers on its keys/values, cached\n"
      "reference log-probs, PerPO loss, AdamW (vision tower frozen). Sampling: N answers on one\n"
      "prompt. Figures: lists/s, tokens/s, peak memory (CPU: peak resident set; CUDA: peak\n"
      "tensor bytes), FLOPs per step counted from the shapes, MFU against the device's peak.\n"
      "The peer (LLaVA shapes only; the Qwen2.5-VL shapes have none and say so)\n"
      "(bench/train_step_peer.py, bench/generate_sampling_peer.py: transformers,\n"
      "image and prompt repeated N times, a live reference forward; generate with\n"
      "num_return_sequences=N) runs next with the same shape, device, dtype and threads; its\n"
      "Python is --python, $PERPO_PYTHON or <source>/.venv/bin/python (it needs torch and\n"
      "transformers: tools/setup.sh --fixtures installs them into .venv), its scripts\n"
      "$PERPO_BENCH_PEER_DIR or bench/ above the executable. A peer that cannot run is an\n"
      "error (exit 1); --no-peer measures perpo alone.\n"
      "--json prints one object per figure and line: name, value, unit, shape, device, dtype,\n"
      "commit.");
  auto options = std::make_shared<BenchOptions>();
  auto json = std::make_shared<bool>(false);
  auto no_peer = std::make_shared<bool>(false);
  bench->add_option("--shape", options->shape, join(bench_shape_names(), " | "))
      ->capture_default_str();
  bench->add_option("--device", options->device, "cpu | cuda | cuda:N")->capture_default_str();
  bench->add_option("--dtype", options->dtype, "fp32 | bf16")->capture_default_str();
  bench->add_option("--answers,-n", options->answers,
                    "answers per list N, >= 2 (default: the shape's, 20 for small and 7b)");
  bench->add_option("--iterations", options->iterations, "timed steps after one warm-up")
      ->capture_default_str();
  bench
      ->add_option("--threads", options->threads,
                   "LibTorch threads (0 = auto: the cores other work leaves free, as run.threads)")
      ->capture_default_str();
  bench->add_option("--peak-tflops", options->peak_tflops,
                    "device peak TFLOP/s for MFU (default: a table of GPUs; none on CPU)");
  bench->add_option("--python", options->python, "Python of the peer");
  bench->add_flag("--no-peer", *no_peer,
                  "measure perpo alone, without the Python peer (transformers) and its ratio");
  bench->add_flag("--plan", options->plan,
                  "print the shape's parameters, training-state memory and FLOPs; build and time "
                  "nothing");
  bench
      ->add_option("--busy-cores", options->busy_cores,
                   "run this many busy-loop processes beside the whole benchmark (perpo and "
                   "the peer), to measure under the load of another job; the report gives the "
                   "load it ran under either way")
      ->capture_default_str();
  bench->add_flag("--json", *json, "one JSON object per figure and line");
  bench->add_flag("--profile", options->profile,
                  "after the timed steps, run as many more under LibTorch's RecordFunction hooks "
                  "and print operators and time per part of the training step and of sampling");

  registry.add(bench, [options, json, no_peer] {
    options->peer = !*no_peer;
    const BenchReport report = run_bench(*options);
    std::fputs((*json ? report.to_json_lines() : report.to_text()).c_str(), stdout);
    return 0;
  });
}

}  // namespace perpo::cli
