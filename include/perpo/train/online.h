// Online mode (train.online_resample_every = K): every K steps the trainer trains on lists freshly
// sampled from the current policy instead of the fixed data.train lists.
//
//   perpo::OnlineSampler sampler(config, records);       // the prompts to sample for
//   std::vector<perpo::PreferenceList> lists = sampler(policy, step);
//
// The call at step s (a multiple of K) takes records [(s/K - 1) * lists_per_call, s/K *
// lists_per_call) (cycling through `records`): a function of the step alone, so a resumed run
// samples for the same records. It decodes sampling.num_answers answers per record with the
// generate module (sampling.temperature / top_p / top_k / max_new_tokens; seeds from run.seed, the
// step and the record id, so a run is repeatable), and scores them with reward.name (or the task's
// default reward). ref_logps stay empty: the trainer fills them with the frozen start's log-probs
// (the live reference model, or the policy with its LoRA adapters switched off), as the offline
// lists' were scored by the model that sampled them.
//
// The lists in use are part of a checkpoint (online_lists_to_json), so a resumed run trains on
// exactly the lists the interrupted one was training on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/data/records.h"
#include "perpo/model/load.h"

namespace perpo {

class OnlineSampler {
 public:
  OnlineSampler(const Config& config, std::vector<DatasetRecord> records,
                std::size_t lists_per_call);

  std::vector<PreferenceList> operator()(LoadedModel& policy, std::int64_t step);

 private:
  Config config_;
  std::vector<DatasetRecord> records_;
  std::size_t lists_per_call_;
};

/// Fills the ref_logps of re-sampled lists with the log-probs of `policy` itself, the model that
/// sampled them (loss.reference: sampler).
void fill_sampler_logps(std::vector<PreferenceList>& lists, LoadedModel& policy,
                        const Config& config);

/// Fills the ref_logps of re-sampled lists that have none with the frozen start's log-probs:
/// scored by `live` (the frozen initial model, loss.reference: live) when given, else by `policy`
/// with its LoRA adapters off (reference.h frozen_start_logps; throws perpo::Error, input, when
/// the adapters are not all that trains).
void fill_frozen_start_logps(std::vector<PreferenceList>& lists, LoadedModel& policy,
                             LlavaModelImpl* live, const Config& config);

/// Re-sampled lists as JSON for trainer_state.json: every field training reads (record id, task,
/// image path, prompt, ground truth, answers, rewards, ref_logps; doubles round-trip exactly).
nlohmann::json online_lists_to_json(const std::vector<PreferenceList>& lists);
/// The inverse; throws perpo::Error (input) naming the field when the JSON is not such a list.
std::vector<PreferenceList> online_lists_from_json(const nlohmann::json& json);

}  // namespace perpo
