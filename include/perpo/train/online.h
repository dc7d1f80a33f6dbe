// Online mode (train.online_resample_every = K): every K steps the trainer trains on lists freshly
// sampled from the current policy instead of the fixed data.train lists.
//
//   perpo::OnlineSampler sampler(config, records);       // the prompts to sample for
//   std::vector<perpo::PreferenceList> lists = sampler(policy, step);
//
// Each call takes the next `lists_per_call` records (cycling through `records`), decodes
// sampling.num_answers answers per record with the generate module (sampling.temperature / top_p /
// top_k / max_new_tokens; seeds from run.seed, the step and the record id, so a run is
// repeatable), and scores them with reward.name (or the task's default reward). ref_logps stay
// empty: the trainer scores them with the frozen initial model (loss.reference: live), as the
// offline lists' were scored by the model that sampled them.
#pragma once

#include <cstddef>
#include <cstdint>
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
  std::size_t next_ = 0;
};

}  // namespace perpo
