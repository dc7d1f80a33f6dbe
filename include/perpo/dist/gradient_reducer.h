// Data parallel: the step's gradients summed over ranks in buckets while the step's last backward
// is still running (the overlap of communication with computation of PyTorch's DDP Reducer).
//
//   perpo::GradientReducer reducer(group, optim.params());  // once; hooks on the parameters
//   for (each list of the step) {
//     if (last) reducer.arm();                              // before the last backward only
//     loss.backward();                                      // full buckets start their all-reduce
//   }
//   reducer.finish();  // the rest, then waits: every gradient is the sum over ranks
//
// A step backpropagates several times (one backward per list or micro-batch) and gradients
// accumulate, so a gradient is final only once the step's last backward has accumulated into it:
// armed, each parameter's post-accumulate-grad hook (an autograd hook that runs after the
// parameter's .grad was accumulated) marks it ready. Buckets hold consecutive parameters in
// reverse order (the order backward produces their gradients) of one dtype and device, about
// `bucket_bytes` each; a bucket starts its asynchronous all-reduce (a flattened copy of its
// gradients) once all its parameters are ready AND every earlier bucket has started, so every
// rank launches the same buckets in the same order (Gloo matches collectives by order). Parameters
// that get no gradient in the last backward (unused in that list, or in the whole step) hold back
// their bucket and the later ones: finish() launches those after the backward, with zeros for a
// gradient that is missing, so no rank ever waits for a hook that never comes.
//
// distributed.overlap false builds the same buckets without hooks: all of them after the backward.
// A parameter without a gradient on a rank takes part with zeros (and gets a gradient), so ranks
// always exchange the same shapes.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include "perpo/dist/process_group.h"

namespace perpo {

class GradientReducer {
 public:
  /// What the last finish() measured, in seconds.
  struct Timing {
    double hidden_s = 0;  // the all-reduces ran while the backward was still running
    double waited_s = 0;  // after the backward: blocked waiting for them (also in comm_seconds)
    int buckets = 0;
    int launched_in_backward = 0;  // buckets started by the hooks
  };

  /// Hooks on every parameter of `params` (trained leaves, each listed once); `group` and the
  /// parameters must outlive the reducer. A single-process group installs nothing.
  /// `overlap` false: no hooks, every bucket after the backward (arm() does nothing).
  GradientReducer(const ProcessGroup& group, const std::vector<at::Tensor>& params,
                  std::size_t bucket_bytes = 25u << 20, bool overlap = true);
  ~GradientReducer();  // removes the hooks
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  /// Call right before the step's last backward on this rank (at most once per step).
  void arm();
  /// After the step's backward passes, on every rank, every step (armed or not): starts the
  /// buckets the hooks did not, waits for all, and writes the sums into the gradients (a
  /// parameter without a gradient gets one). Throws perpo::Error when a collective fails.
  void finish();
  const Timing& last() const { return timing_; }
  std::size_t bucket_count() const { return buckets_.size(); }

 private:
  struct Bucket {
    std::vector<std::size_t> params;  // indices into params_, in backward order
    std::size_t waiting = 0;          // armed: parameters not yet ready
    at::Tensor flat;                  // the flattened gradients in flight
    ProcessGroup::Work work;
    bool launched = false;
  };
  struct Hook;
  void on_ready(std::size_t param);  // a parameter's gradient is final (armed only)
  void launch(Bucket& bucket);
  void launch_ready();  // buckets in order from next_, while complete

  const ProcessGroup& group_;
  std::vector<at::Tensor> params_;
  bool overlap_ = true;
  std::vector<Bucket> buckets_;
  std::vector<std::size_t> bucket_of_;  // params_ index -> bucket
  std::vector<bool> ready_;             // params_ index -> ready in this armed backward
  std::size_t next_ = 0;                // the first bucket not launched
  int launched_by_hooks_ = 0;           // in this step
  bool armed_ = false;
  std::chrono::steady_clock::time_point backward_end_;
  Timing timing_;
};

}  // namespace perpo
