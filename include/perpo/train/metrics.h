// What a run reports per logged step: metrics.jsonl (one JSON object per line), TensorBoard
// scalars (run.tensorboard), and the progress line.
//
//   perpo::MetricsLog log(run_dir, config.run.tensorboard, /*resume_after_step=*/-1);
//   log.write(metrics);                          // {"step": 3, "loss": 0.41, ...}
//   log.write_extra(3, {{"eval/acc@0.5", 0.62}}); // eval lines
//
// The step gathers its metrics on the device as sums and counts (StepSums) and reads them to the
// host once per logged step (train.log_every), together with the gradient norm and the count of
// non-finite steps: that read is the training loop's only host synchronisation. A non-finite
// loss or gradient skips the update on the device (AdamW::step(found_inf)), so steps that are
// not logged never wait for the device. Data-parallel seam: ranks add up the sums (one all-reduce
// of StepSums::values) before the means are taken, and only rank 0 holds a MetricsLog.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "perpo/train/tensorboard.h"

namespace perpo {

struct StepMetrics {
  std::int64_t step = 0;
  double loss = 0;           // what was backpropagated (objective + nll term), mean over lists
  double objective = 0;      // the listwise (or sft) objective alone
  double nll = 0;            // the added SFT term (loss.nll_weight > 0), else 0
  double lr = 0;             // decoder group's learning rate of this step
  double grad_norm = 0;      // global norm before clipping
  double pair_accuracy = 0;  // share of better pairs the policy ranks right (s_i > s_j)
  double mean_margin = 0;    // mean s_i - s_j over those pairs
  double lists_per_s = 0;
  double tokens_per_s = 0;    // prefix + answer tokens processed per second
  double peak_memory_mb = 0;  // see peak_memory_mb(): CUDA allocator peak, or the CPU's peak RSS
  double comm_s = -1;         // data parallel: seconds this rank waited in collectives (else -1)
  // Data parallel, gradients all-reduced (GradientReducer; else -1): seconds the all-reduce of
  // the gradients ran while the step's last backward was still running (hidden: not in comm_s),
  // and seconds waited for it after the backward (part of comm_s).
  double comm_hidden_s = -1;
  double comm_grad_s = -1;
  std::int64_t lists = 0;                 // lists (records) in the step
  std::int64_t lists_without_signal = 0;  // lists whose rewards were all equal
  double mean_reward = 0;                 // mean over the step's lists of each list's mean reward
  double reward_std = 0;     // mean over the step's lists of the reward std within the list
  bool has_rewards = false;  // the two above are measured (not for sft's records)
  // loss.name grpo (written when `grpo`):
  bool grpo = false;
  double clip_low = 0;             // share of answer tokens whose ratio was clipped below
  double clip_high = 0;            // share clipped above
  double kl = 0;                   // mean k3 KL to the reference per answer token (0 = off)
  std::int64_t lists_dropped = 0;  // lists left out by loss.grpo.drop_all_equal
  double answer_tokens = 0;        // mean answer length in tokens
  bool skipped = false;            // non-finite loss or gradient: no update
  // false on a step that is not logged (train.log_every): its numbers stayed on the device, and
  // only step, lr and the speeds above are filled in.
  bool measured = true;
};

/// The step's metrics as sums and counts over its lists, as they add up across micro-batches and
/// ranks. finish() turns them into StepMetrics' means.
struct StepSums {
  double loss = 0;                  // sum over lists of each list's loss
  double objective = 0;             // the same for the objective
  double nll = 0;                   // the same for the nll term
  double pairs = 0;                 // better/worse pairs (r_i > r_j)
  double pairs_right = 0;           // of those, ranked right by the policy
  double margin = 0;                // summed s_i - s_j over the pairs
  double lists_without_signal = 0;  // lists whose rewards are all equal
  double lists = 0;
  double rewards = 0;        // sum over lists of each list's mean reward
  double reward_std = 0;     // sum over lists of the reward std within the list
  double reward_lists = 0;   // lists that had rewards (not sft's records)
  double answers = 0;        // answers scored (grpo)
  double tokens = 0;         // answer tokens scored (grpo)
  double clipped_low = 0;    // of those, clipped below (grpo)
  double clipped_high = 0;   // clipped above (grpo)
  double kl = 0;             // summed k3 KL over those tokens (grpo)
  double lists_dropped = 0;  // lists left out (grpo's drop_all_equal); not in the loss's mean

  static constexpr std::int64_t kCount = 17;  // values in the order above
  /// The sums from kCount values in the order above, and back.
  static StepSums from(const double* values);
  std::vector<double> values() const;
  /// Fills StepMetrics' loss, objective, nll (means over the lists not dropped), pair_accuracy,
  /// mean_margin, lists, lists_without_signal, mean_reward, reward_std and the grpo values.
  void finish(StepMetrics& m) const;
};

class MetricsLog {
 public:
  /// Opens <run_dir>/metrics.jsonl for appending. It first drops the lines of steps after
  /// `resume_after_step` (written after the checkpoint a resumed run starts from); -1, a fresh
  /// run, drops every line (left by a run killed before its first checkpoint).
  MetricsLog(const std::filesystem::path& run_dir, bool tensorboard,
             std::int64_t resume_after_step = -1);

  void write(const StepMetrics& metrics);
  void write_extra(std::int64_t step, const std::map<std::string, double>& values);

  const std::filesystem::path& path() const { return path_; }

 private:
  void append(const std::string& line);

  std::filesystem::path path_;
  std::ofstream out_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
};

/// The metrics.jsonl field peak_memory_mb, in MiB. On a CUDA `device`: the peak of the bytes
/// LibTorch's caching allocator handed out on that device since the process started (tensors
/// only: what torch.cuda.max_memory_allocated reports; the allocator's reserve and the CUDA
/// context come on top). On the CPU: the process's peak resident set size (getrusage ru_maxrss):
/// everything the process touched (LibTorch, tokenizer, images), not tensors alone.
double peak_memory_mb(const c10::Device& device);

/// "step 12/300 loss 0.412 acc 0.75 3.1 lists/s" for the progress bar's note.
std::string progress_note(const StepMetrics& metrics);

}  // namespace perpo
