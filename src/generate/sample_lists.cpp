#include "perpo/generate/sample_lists.h"

#include <torch/torch.h>

#include <algorithm>
#include <set>

#include "perpo/core/error.h"
#include "perpo/core/strings.h"
#include "perpo/generate/list_logps.h"
#include "perpo/reward/reward_config.h"

namespace perpo {

namespace {

/// One record of the batch while its answers are drawn.
struct Pending {
  const DatasetRecord* record = nullptr;
  const RewardSpec* reward = nullptr;
  std::uint64_t seed = 0;             // record_seed(run.seed, id)
  std::int64_t drawn = 0;             // answers decoded so far (= next answer index)
  std::vector<std::string> answers;   // kept answers, in draw order
  std::vector<std::string> repeated;  // dropped repeats, in draw order
  std::set<std::string> seen;         // trimmed texts of the kept answers
  RewardOptions reward_options;       // with the record's box units and frame
};

}  // namespace

ListSampler::ListSampler(VisionLanguageModel& model, RecordPrompts& prompts, const Config& config)
    : model_(model),
      prompts_(prompts),
      sampling_(config.sampling),
      reward_config_(config.reward),
      reward_options_(reward_options_from(config.reward)),
      run_seed_(config.run.seed),
      skip_bad_records_(config.data.on_bad_record == "skip") {
  options_.max_new_tokens = sampling_.max_new_tokens;
  options_.stop_ids = prompts.tokenizer().stop_ids();
  options_.sampler = SamplerOptions::from(sampling_);
  options_.sampler.validate();
  const int pad = prompts.tokenizer().pad_id();
  options_.pad_id = pad >= 0 && pad < model.vocab_size() ? pad : 0;
  if (!reward_config_.name.empty()) find_reward(reward_config_.name);  // unknown: input error
  PERPO_CHECK_INPUT(sampling_.num_answers >= 2, "sampling.num_answers must be >= 2, got ",
                    sampling_.num_answers);
}

const RewardSpec& ListSampler::reward_for(const DatasetRecord& record) const {
  return reward_for_task(record.task, reward_config_.name, record_name(record));
}

SampledBatch ListSampler::sample(const std::vector<DatasetRecord>& records) {
  SampledBatch batch;
  std::vector<Pending> pending;
  std::vector<GenerationPrompt> prompts;
  const auto context = static_cast<int>(model_.context_length());
  for (const DatasetRecord& record : records) {
    try {
      Pending p;
      p.record = &record;
      p.reward = &reward_for(record);
      p.reward_options = prompts_.boxes().reward_options(record, reward_options_);
      check_ground_truth(*p.reward, record.ground_truth, p.reward_options, record_name(record));
      p.seed = record_seed(run_seed_, record.id);
      GenerationPrompt prompt = prompts_.build(record);
      check_prompt_fits_context(
          prompt, options_.max_new_tokens, context,
          "lower sampling.max_new_tokens, or skip such records with data.on_bad_record=skip");
      pending.push_back(std::move(p));
      prompts.push_back(std::move(prompt));
    } catch (const Error& e) {
      if (!skip_bad_records_ || !e.is_input_error()) throw;
      batch.skipped.push_back(e.what());
    }
  }
  if (pending.empty()) return batch;

  EncodedPrompts encoded = encode_prompts(model_, prompts, options_);
  for (std::int64_t length : encoded.lengths) batch.stats.prompt_tokens += length;
  const std::int64_t N = sampling_.num_answers;
  const std::int64_t budget =
      sampling_.unique_answers ? (sampling_.max_samples > 0 ? sampling_.max_samples : 4 * N) : N;
  while (true) {  // rounds: draw what each record still lacks, within its budget
    std::vector<std::int64_t> row_prompts;
    std::vector<std::uint64_t> row_seeds;
    for (std::size_t r = 0; r < pending.size(); ++r) {
      Pending& p = pending[r];
      const std::int64_t lacking = N - static_cast<std::int64_t>(p.answers.size());
      const std::int64_t draws = std::min(lacking, budget - p.drawn);
      for (std::int64_t i = 0; i < draws; ++i) {
        row_prompts.push_back(static_cast<std::int64_t>(r));
        row_seeds.push_back(answer_seed(p.seed, p.drawn++));
      }
    }
    if (row_prompts.empty()) break;
    std::vector<GeneratedAnswer> answers =
        decode_rows(model_, encoded, row_prompts, row_seeds, options_, &batch.stats);
    for (std::size_t b = 0; b < answers.size(); ++b) {
      Pending& p = pending[row_prompts[b]];
      std::string text = prompts_.answer_text(answers[b].ids);
      if (sampling_.unique_answers && !p.seen.insert(std::string(trim(text))).second) {
        p.repeated.push_back(std::move(text));
        ++batch.duplicates_dropped;
      } else {
        p.answers.push_back(std::move(text));
      }
    }
  }

  for (std::size_t r = 0; r < pending.size(); ++r) {
    Pending& p = pending[r];
    PreferenceList list;
    list.record = *p.record;
    list.answers = std::move(p.answers);
    if (static_cast<std::int64_t>(list.answers.size()) < N) ++batch.short_lists;
    for (std::size_t i = 0; list.answers.size() < 2 && i < p.repeated.size(); ++i) {
      list.answers.push_back(p.repeated[i]);  // a list needs two answers, even equal ones
    }
    batch.sampled.push_back(list.answers.size());
    if (sampling_.add_ground_truth) {  // as the model writes it (BoxConvention::target)
      const std::string target = prompts_.boxes().target(*p.record);
      const bool present =
          std::any_of(list.answers.begin(), list.answers.end(),
                      [&](const std::string& a) { return trim(a) == trim(target); });
      if (!present) list.answers.push_back(target);
    }
    prompts_.boxes().annotate(list.record, p.reward_options);
    nlohmann::json notes = nlohmann::json::array();
    for (const std::string& answer : list.answers) {
      RewardResult result = p.reward->score(answer, p.record->ground_truth, p.reward_options);
      list.rewards.push_back(result.score);
      notes.push_back(result.note);
    }
    list.record.extra["reward_notes"] = std::move(notes);
    if (sampling_.reference_logps || sampling_.token_logps) {
      // The answers are scored on the prompt's keys/values from decoding: no second prompt pass.
      const ListExample example = prompts_.encode_list(list);
      PERPO_CHECK(example.prompt_ids == prompts[r].prompt_ids, prompts[r].name,
                  ": the list's prompt differs from the sampled prompt");
      AnswerLogps logps = answer_token_logps(
          model_, prompt_prefix(encoded, static_cast<std::int64_t>(r)), example.answer_ids);
      if (sampling_.reference_logps) list.ref_logps = std::move(logps.sums);
      if (sampling_.token_logps) list.sample_token_logps = std::move(logps.tokens);
    }
    batch.lists.push_back(std::move(list));
  }
  return batch;
}

SampledBatch ListSampler::sample_in_batches(const std::vector<DatasetRecord>& records) {
  const auto size = static_cast<std::size_t>(std::max(sampling_.lists_per_batch, 1));
  SampledBatch all;
  for (std::size_t start = 0; start < records.size(); start += size) {
    const std::size_t end = std::min(records.size(), start + size);
    SampledBatch part =
        sample(std::vector<DatasetRecord>(records.begin() + start, records.begin() + end));
    for (auto& list : part.lists) all.lists.push_back(std::move(list));
    for (auto& message : part.skipped) all.skipped.push_back(std::move(message));
    all.sampled.insert(all.sampled.end(), part.sampled.begin(), part.sampled.end());
    all.duplicates_dropped += part.duplicates_dropped;
    all.short_lists += part.short_lists;
    all.stats.prompt_tokens += part.stats.prompt_tokens;
    all.stats.generated_tokens += part.stats.generated_tokens;
    all.stats.steps += part.stats.steps;
  }
  return all;
}

}  // namespace perpo
