// Preference lists from dataset records: N sampled answers per record, each scored against the
// ground truth by the configured reward, with the sampling model's summed log-prob of each answer
// as ref_logps (scored on the prompt's keys/values from decoding: each prompt runs once). The
// library behind `perpo sample`; train's online mode calls it too.
//
//   perpo::RecordPrompts prompts(model->config(), tokenizer, config);
//   perpo::ListSampler sampler(*model, prompts, config);
//   perpo::SampledBatch batch = sampler.sample(records);   // records decoded together
//   for (const perpo::PreferenceList& list : batch.lists) ...
//
// Settings (config.h): sampling.{num_answers, temperature, top_k, top_p, max_new_tokens,
// lists_per_batch,
// reference_logps, unique_answers, max_samples, add_ground_truth}, run.seed, reward.*,
// data.on_bad_record. Answer n of a record is drawn from the stream
// answer_seed(record_seed(run.seed, id), n) (sampler.h), so the lists do not depend on the batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/data/records.h"
#include "perpo/generate/generator.h"
#include "perpo/generate/record_prompts.h"
#include "perpo/model/vlm.h"
#include "perpo/reward/reward.h"

namespace perpo {

struct SampledBatch {
  std::vector<PreferenceList> lists;   // one per good record, in order; record.extra holds
                                       // "reward_notes" (one note per answer)
  std::vector<std::string> skipped;    // messages of bad records left out (on_bad_record skip)
  std::size_t duplicates_dropped = 0;  // repeated answers dropped (unique_answers)
  std::size_t short_lists = 0;         // lists with fewer than N distinct answers
  std::vector<std::size_t> sampled;    // per list: its answers drawn from the model (the rest,
                                       // at the end, is the added ground truth)
  GenerationStats stats;               // tokens decoded
};

class ListSampler {
 public:
  /// Checks the sampler and reward settings (unknown reward: perpo::Error (input)).
  /// Keeps references to `model` and `prompts`.
  ListSampler(VisionLanguageModel& model, RecordPrompts& prompts, const Config& config);

  /// Lists for `records`, decoded together. A bad record (prompt over the context or
  /// data.max_prompt_tokens, missing image, task without a default reward) throws perpo::Error
  /// (input) naming it, or with data.on_bad_record=skip is left out and reported in `skipped`.
  SampledBatch sample(const std::vector<DatasetRecord>& records);
  /// sample() over consecutive batches of sampling.lists_per_batch records, merged in order
  /// (online rounds, the demo; `perpo sample` batches itself to checkpoint between batches).
  SampledBatch sample_in_batches(const std::vector<DatasetRecord>& records);

  /// The reward that scores `record`'s answers: reward.name, else the task's default.
  const RewardSpec& reward_for(const DatasetRecord& record) const;
  /// The seed that answer streams derive from (run.seed at construction); online training
  /// draws each round from its own (run.seed + step).
  void set_seed(std::uint64_t seed) { run_seed_ = seed; }
  const GenerationOptions& generation_options() const { return options_; }

 private:
  VisionLanguageModel& model_;
  RecordPrompts& prompts_;
  SamplingConfig sampling_;
  RewardConfig reward_config_;
  RewardOptions reward_options_;
  GenerationOptions options_;
  std::uint64_t run_seed_;
  bool skip_bad_records_;
};

}  // namespace perpo
