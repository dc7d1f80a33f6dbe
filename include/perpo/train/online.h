// Online mode (train.online_resample_every = K): every K steps the trainer trains on lists freshly
// sampled from the current policy instead of the fixed data.train lists.
//
//   perpo::OnlineSampler sampler(config, records, lists_per_call);  // the prompts to sample for
//   std::vector<perpo::PreferenceList> lists = sampler(policy, step);
//   sampler.last_metrics();   // {"online/grounding/mean_reward": 0.41, ...} of that call
//
// The sampling is `perpo sample`'s (generate/sample_lists.h ListSampler): the same prompts,
// sampling.* settings (num_answers, temperature, top_p, top_k, max_new_tokens, unique_answers,
// max_samples, add_ground_truth, lists_per_batch), context checks and rewards. Answer n of record
// r at step s comes from the stream answer_seed(record_seed(run.seed + s, id), n), so a run is
// repeatable and a resumed run samples what the interrupted one would have.
//
// The record chooser: the call at step s (a multiple of K) takes the next lists_per_call records
// (at most all of them) of `records`, cycling in their order: records [(s/K - 1) * n, s/K * n)
// modulo the count (for grpo, whose first call is at step 0: [s/K * n, (s/K + 1) * n)). A
// function of the step alone.
//
// sample_token_logps: for loss.name grpo with K > 1 the sampler stores the sampling policy's
// per-token log-probs (the old policy of the importance ratios); grpo also samples before the
// first step, so that it never trains on data.train's lists (whose sampler is unknown).
//
// ref_logps: with loss.reference: sampler the sampler stores the sampling policy's own log-probs
// (scored on the prompt's keys/values from decoding); otherwise they stay empty and the trainer's
// ReferenceSource (reference.h) fills them with the frozen start's.
//
// The lists in use are part of a checkpoint (online_lists_to_json), so a resumed run trains on
// exactly the lists the interrupted one was training on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/data/records.h"
#include "perpo/dist/process_group.h"
#include "perpo/model/load.h"

namespace perpo {

class OnlineSampler {
 public:
  /// Throws perpo::Error (input) when there is no record, or one without a ground truth.
  OnlineSampler(const Config& config, std::vector<DatasetRecord> records,
                std::size_t lists_per_call);

  /// Data parallel: each rank samples every W-th of a call's records, and the ranks exchange
  /// their lists (and metric sums) so that every rank returns the lists of one process, in the
  /// same order. `group` must outlive the sampler; a group of 1 changes nothing.
  void set_group(const ProcessGroup* group) { group_ = group; }
  /// The records the call at `step` samples for (the chooser above).
  std::vector<DatasetRecord> records_for(std::int64_t step) const;

  /// Lists for records_for(step), sampled from `policy` (eval mode for the call, restored after).
  std::vector<PreferenceList> operator()(LoadedModel& policy, std::int64_t step);

  /// What the last call sampled, for metrics.jsonl: per task "online/<task>/mean_reward" (of the
  /// answers drawn from the policy; an added ground truth left out) and
  /// "online/<task>/all_equal_lists" (lists whose rewards are all equal: no preference signal),
  /// and "online/lists", "online/mean_reward", "online/short_lists".
  const std::map<std::string, double>& last_metrics() const { return last_metrics_; }

 private:
  Config config_;
  std::vector<DatasetRecord> records_;
  std::size_t lists_per_call_;
  std::map<std::string, double> last_metrics_;
  const ProcessGroup* group_ = nullptr;
};

/// Re-sampled lists as JSON for trainer_state.json: every field training reads (record id, task,
/// image path, prompt, ground truth, answers, rewards, ref_logps, sample_token_logps; doubles
/// round-trip exactly).
nlohmann::json online_lists_to_json(const std::vector<PreferenceList>& lists);
/// The inverse; throws perpo::Error (input) naming the field when the JSON is not such a list.
std::vector<PreferenceList> online_lists_from_json(const nlohmann::json& json);

}  // namespace perpo
