// The training loop behind `perpo train`: one engine for loss.name sft | perpo | dpo | lipo |
// ranking.
//
//   perpo::TrainSummary s = perpo::run_training(config, {.resume = false}, hooks);
//
// Per optimizer step: train.grad_accum micro-batches of train.lists_per_step lists. Each list runs
// its prefix (image + prompt) once and its N answers on the prefix keys/values (score_list), its
// objective is computed on its own (so lists of different N mix freely) and backpropagated at
// once, scaled by 1 / (lists_per_step * grad_accum): the step's gradient is that of the mean over
// its lists, and no list's graph outlives its backward. Then: gradient reduction (data-parallel
// seam), global-norm clipping, the lr of the schedule, AdamW. A non-finite loss or gradient skips
// the update (logged; train.max_nonfinite_steps in a row stop the run with an error).
//
// Run folder (run.dir): config.yaml, log.txt, metrics.jsonl, tensorboard/ (run.tensorboard),
// reference_logps.json (pre-pass cache), checkpoints/step-N/ (run_checkpoint.h).
//
// Data parallel (TrainOptions::group, dist/process_group.h): train.lists_per_step is the step's
// global number of lists; each rank takes its share of the step's indices (rank_share: the same
// lists a single process would train on, dealt out), backpropagates them with the global scale,
// and the gradients are summed over ranks (dist/gradient_reducer.h: flattened buckets, all-reduced
// while the rank's last backward of the step runs; ZeRO-1: reduce-scattered) before clipping,
// so every rank makes the same update as one process with the same config. The step's metric sums
// are summed over ranks (so a non-finite loss on one rank skips the step on all), a stop seen by
// any rank is agreed at the step's end, and rank 0 alone writes run.dir (config.yaml, log.txt,
// metrics.jsonl, the reference cache, checkpoints: rank-independent, so a run resumes on any
// world size) and evaluates. Online re-sampling: each rank samples its share of the records and
// the ranks exchange the lists (OnlineSampler::set_group).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/data/records.h"
#include "perpo/dist/process_group.h"
#include "perpo/model/load.h"
#include "perpo/model/run_checkpoint.h"
#include "perpo/train/metrics.h"

namespace perpo {

struct TrainOptions {
  bool resume = false;      // continue from the newest checkpoint in run.dir/checkpoints
  bool force = false;       // use run.dir even when it holds files perpo did not write
  std::string config_file;  // the --config file: an input, never written over (may be "")
  const ProcessGroup* group = nullptr;  // data parallel: this rank's group (null: one process)
};

/// Seams to code outside this module; every one is optional.
struct TrainerHooks {
  /// Polled after every step: true finishes the step, saves a checkpoint and returns
  /// (SIGINT/SIGTERM through core/signals.h's stop_requested()).
  std::function<bool()> stop_requested;
  /// Online mode (train.online_resample_every = K): every K steps, the lists to train on next,
  /// sampled from the current policy. Default: OnlineSampler (online.h: `perpo sample`'s
  /// ListSampler and a record chooser) over the records of data.train, whose per-task rewards
  /// are logged to metrics.jsonl ("online/..."). The run's ReferenceSource (reference.h) fills
  /// the lists' ref_logps; a setup that cannot is refused up front. The lists in use go into
  /// every checkpoint, so --resume continues on exactly them.
  std::function<std::vector<PreferenceList>(LoadedModel& policy, std::int64_t step)> resample;
  /// Periodic evaluation (train.eval_every) on data.eval (`perpo train` passes
  /// eval/train_eval.h's training_evaluator): metric name -> value, written to metrics.jsonl
  /// (and TensorBoard) as "eval/<name>" after the step's checkpoint. Called without gradients;
  /// the trainer restores its RNG states and train mode afterwards, so evaluating never changes
  /// the training losses.
  std::function<std::map<std::string, double>(LoadedModel& policy, std::int64_t step)> evaluate;
  /// With train.eval_every > 0, also evaluate the initial weights, as step 0, before the first
  /// step of a fresh run (curves that start where training starts).
  bool evaluate_at_start = false;
  /// Data-parallel: average the gradients of `params` over ranks (c10d all-reduce).
  std::function<void(const std::vector<at::Tensor>& params)> reduce_gradients;
  /// Called with each StepMetrics after the step (tests, custom loggers).
  std::function<void(const StepMetrics&)> on_step;
  /// Fault injection between the files of a checkpoint (tests).
  CheckpointFault checkpoint_fault;
};

struct TrainSummary {
  std::int64_t first_step = 0;  // steps already done when this call started (resume)
  std::int64_t steps = 0;       // steps done at the end
  std::int64_t total_steps = 0;
  bool stopped = false;  // ended by stop_requested before total_steps
  std::filesystem::path last_checkpoint;
  std::int64_t skipped_steps = 0;  // non-finite steps skipped in this call
  // Steps whose metrics were read to the host: the logged ones (train.log_every and the last),
  // each in one read; the other steps never wait for the device.
  std::int64_t metric_reads = 0;
  std::int64_t resamples = 0;  // online mode: times the lists were re-sampled
  std::size_t truncated_answers = 0;
  std::string reference_source;  // lists | cache | computed | live | none
  double last_loss = 0;
};

/// Runs (or resumes) the training run described by `config`. Throws perpo::Error: input errors
/// for bad config / data / a refused resume, runtime errors otherwise.
TrainSummary run_training(const Config& config, const TrainOptions& options = {},
                          const TrainerHooks& hooks = {});

/// Optimizer steps of a run over `items` lists (or records): train.max_steps when set, else
/// epochs * ceil(items / (lists_per_step * grad_accum)).
std::int64_t total_train_steps(const Config& config, std::size_t items);

}  // namespace perpo
