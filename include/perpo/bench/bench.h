// `perpo bench`: speed of a PerPO training step and of sampling on random weights of a given
// shape, beside the Python peer (transformers, the authors' computation), with the ratio.
//
//   perpo::BenchOptions options;                 // shape small, cpu, fp32, N from the shape
//   perpo::BenchReport report = perpo::run_bench(options);
//   std::fputs(report.to_text().c_str(), stdout);   // or report.to_json_lines()
//
// Training step (perpo): the prefix (image + prompt) runs once, the N answers on its keys and
// values, reference log-probs read from the list (cached, as in training), PerPO loss, backward,
// gradient clipping and AdamW; the vision tower is frozen, projector (Qwen2.5-VL: the patch
// merger) and decoder train. Sampling (perpo): N answers of G tokens on one prompt, the prompt run
// once (generate module), temperature 1, no stop token. Both families (LLaVA-1.5, Qwen2.5-VL) run
// the same code through the family interface (model/vlm.h). The peer (bench/train_step_peer.py,
// bench/generate_sampling_peer.py) runs the LLaVA shapes in its own process; the Qwen2.5-VL
// shapes have none, and the report says so. --plan prints a shape's parameters, state memory
// and FLOPs without building it (the 7B shapes on a machine that cannot hold them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "perpo/bench/bench_shape.h"

namespace perpo {

struct BenchOptions {
  std::string shape = "small";  // tiny | small | 7b | qwen-tiny | qwen2.5-vl-3b | qwen2.5-vl-7b
  std::string device = "cpu";   // cpu | cuda | cuda:N
  std::string dtype = "fp32";   // fp32 | bf16
  std::int64_t answers = -1;    // N; -1 = the shape's (20 for small and 7b)
  int iterations = 3;           // timed steps after one warm-up step
  int threads = 0;              // LibTorch intra-op threads; 0 = auto (set_threads)
  double peak_tflops = 0;       // device peak for MFU; 0 = from the table of known GPUs
  bool peer = true;             // also run the Python peer (an error when it cannot run)
  bool plan = false;            // only the shape's figures (parameters, memory, FLOPs): no run
  int busy_cores = 0;           // busy-loop processes beside the whole run (perpo and the peer)
  bool profile = false;         // also run the training step and sampling `iterations` more times
                                // under OpProfile (runtime/op_profile.h): operators per part
  std::string python;           // peer's Python; "" = $PERPO_PYTHON, else <source>/.venv/bin/python
};

/// One figure: name, value, unit ("lists/s", "tokens/s", "MiB", "FLOP", "TFLOP/s", "%", "x",
/// "parameters").
struct BenchFigure {
  std::string name;  // e.g. train.lists_per_s, peer.train.lists_per_s, ratio.train.lists_per_s
  double value = 0;
  std::string unit;
};

struct BenchReport {
  BenchShape shape;
  BenchOptions options;
  std::string device_name;            // "cpu (2 threads)" or the GPU's name
  std::optional<double> peak_tflops;  // none on CPU without --peak-tflops
  std::vector<BenchFigure> figures;
  std::vector<std::string> notes;  // "peer skipped (--no-peer)", the peer's command lines
  std::string commit;              // git commit of the build
  std::string profile;             // --profile: OpProfile's tables of the training step
  std::string sample_profile;      // --profile: and of sampling (one list per iteration)

  /// The human-readable table.
  std::string to_text() const;
  /// One JSON object per figure and line: {name, value, unit, shape, device, dtype, commit}.
  std::string to_json_lines() const;
};

/// The load the figures were taken under, in every report that runs something:
/// machine.busy_cores_elsewhere (cores other processes kept busy over 100 ms at the start, the
/// --busy-cores ones included), machine.loadavg_start / machine.loadavg_end (/proc/loadavg, one
/// minute), machine.busy_cores_added (--busy-cores). With busy_cores > 0 that many child
/// processes spin from before the thread choice to the end of the peer's run, standing in for
/// another job on the machine; they are killed when run_bench returns or throws.
///
/// Checks the options (throws perpo::Error (input): unknown shape / device / dtype, N < 2,
/// iterations < 1, a CUDA device without CUDA, a model that does not fit) and, with options.peer
/// and a shape the peer runs, that the peer can run (throws perpo::Error (runtime): no Python, a
/// Python without torch or transformers, no peer scripts), then measures; a peer script that
/// fails is an error too. With options.plan: the shape's figures (model.parameters,
/// model.trained_parameters, train.state_memory_estimate, train.flops_per_step,
/// sample.flops_per_list) and whether the memory check would pass, nothing built.
BenchReport run_bench(const BenchOptions& options);

/// Validates the options and returns the shape with N applied; no model is built.
BenchShape checked_bench_shape(const BenchOptions& options);

/// Dense peak TFLOP/s of a GPU by its name for "bf16" or "fp32" (no TF32), from a small table
/// (H100/H200 SXM bf16 989); nullopt for an unknown device.
std::optional<double> known_peak_tflops(const std::string& device_name, const std::string& dtype);

/// The git commit this perpo was configured from ("unknown" outside a git checkout).
std::string build_commit();

}  // namespace perpo
