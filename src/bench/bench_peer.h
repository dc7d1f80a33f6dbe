// The Python peer of perpo bench (private to src/bench): transformers'
// LlavaForConditionalGeneration on the same shape, the authors' computation (image and prompt
// repeated N times, a live reference forward every step; sampling with
// generate(num_return_sequences=N)), run as bench/train_step_peer.py and
// bench/generate_sampling_peer.py in their own processes. At the 7b shape the peer trains with
// gradient checkpointing, as the authors' released scripts do (N full sequences of a 7B model
// do not fit one GPU without it); perpo does not need it there.
//
// Finding them: the scripts in $PERPO_BENCH_PEER_DIR, else in bench/ of the first folder above the
// perpo executable that has them (the source tree of a build folder); the Python in --python,
// else $PERPO_PYTHON, else <source tree>/.venv/bin/python. When either is missing or a script
// fails, the figures stay 0 and a note says why.
#pragma once

#include <string>
#include <vector>

#include "perpo/bench/bench_shape.h"

namespace perpo::bench_detail {

struct PeerRequest {
  BenchShape shape;
  std::string device;  // as given to perpo bench
  std::string dtype;   // fp32 | bf16
  int threads = 0;
  int iterations = 1;
  std::string python;  // "" = default (see above)
};

struct PeerFigures {
  double train_seconds_per_list = 0;  // 0 = not measured
  double train_peak_mib = 0;
  double sample_seconds_per_list = 0;  // 0 = not measured
  double sample_peak_mib = 0;
};

/// Runs both peer scripts; appends what happened (commands, skips, failures) to `notes`.
PeerFigures run_peer(const PeerRequest& request, std::vector<std::string>& notes);

}  // namespace perpo::bench_detail
