// The Python peer of perpo bench (private to src/bench): transformers'
// LlavaForConditionalGeneration on the same shape (LLaVA shapes only: no peer is written for the
// Qwen2.5-VL shapes yet), the authors' computation (image and prompt
// repeated N times, a live reference forward every step; sampling with
// generate(num_return_sequences=N)), run as bench/train_step_peer.py and
// bench/generate_sampling_peer.py in their own processes. At the 7b shape the peer trains with
// gradient checkpointing, as the authors' released scripts do (N full sequences of a 7B model
// do not fit one GPU without it); perpo does not need it there.
//
// Finding them: the scripts in $PERPO_BENCH_PEER_DIR, else in bench/ of the first folder above the
// perpo executable that has them (the source tree of a build folder); the Python in --python,
// else $PERPO_PYTHON, else <source tree>/.venv/bin/python. A peer that cannot run is an error
// (perpo::Error, runtime: exit 1) naming the Python, what it printed and how to fix it; perpo
// bench --no-peer measures perpo alone.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "perpo/bench/bench_shape.h"

namespace perpo::bench_detail {

/// Whether the peer runs `shape`: its scripts build transformers' LlavaForConditionalGeneration,
/// so LLaVA shapes only. Qwen2.5-VL shapes have no peer (and no ratio).
bool peer_runs(const BenchShape& shape);
/// The report's note for a shape without a peer: says so, and why.
std::string no_peer_note(const BenchShape& shape);

/// The peer's scripts folder and Python.
struct PeerProgram {
  std::filesystem::path scripts;  // holds train_step_peer.py and generate_sampling_peer.py
  std::string python;
};

/// Finds the peer (see above) and checks that its Python imports torch and transformers, before
/// perpo measures anything. Throws perpo::Error (runtime) naming what is missing: the module and
/// how to install it (tools/setup.sh --fixtures, or pip install), the Python and what it printed.
PeerProgram find_peer(const std::string& requested_python);

struct PeerRequest {
  BenchShape shape;
  std::string device;  // as given to perpo bench
  std::string dtype;   // fp32 | bf16
  int threads = 0;
  int iterations = 1;
  PeerProgram program;  // find_peer's
};

struct PeerFigures {
  double train_seconds_per_list = 0;
  double train_peak_mib = 0;
  double sample_seconds_per_list = 0;
  double sample_peak_mib = 0;
};

/// Runs both peer scripts; appends their command lines to `notes`. Throws perpo::Error (runtime)
/// when a script fails or prints no figure, quoting the end of its output. Its temporary folder
/// (the shape's config.json) is removed on every path.
PeerFigures run_peer(const PeerRequest& request, std::vector<std::string>& notes);

}  // namespace perpo::bench_detail
