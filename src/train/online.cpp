// Online mode's sampler: generate + reward (online.h).
#include "perpo/train/online.h"

#include <torch/torch.h>

#include "perpo/core/error.h"
#include "perpo/data/collate.h"
#include "perpo/data/examples.h"
#include "perpo/generate/generator.h"
#include "perpo/reward/reward.h"
#include "perpo/reward/reward_config.h"
#include "perpo/tokenizer/chat_template.h"

namespace perpo {

OnlineSampler::OnlineSampler(const Config& config, std::vector<DatasetRecord> records,
                             std::size_t lists_per_call)
    : config_(config), records_(std::move(records)), lists_per_call_(lists_per_call) {
  PERPO_CHECK_INPUT(!records_.empty(), "online mode has no records to sample for");
  for (const DatasetRecord& record : records_) {
    PERPO_CHECK_INPUT(!record.ground_truth.empty(), record.source.to_string(),
                      ": online mode scores new answers against the ground_truth, which is empty");
  }
}

std::vector<PreferenceList> OnlineSampler::operator()(LoadedModel& policy, std::int64_t step) {
  ChatTemplate chat(*policy.tokenizer, config_.tokenizer);
  const auto param = policy.model->parameters().front();
  std::vector<DatasetRecord> chosen;
  std::vector<GenerationPrompt> prompts;
  for (std::size_t k = 0; k < lists_per_call_; ++k) {
    const DatasetRecord& record = records_[next_++ % records_.size()];
    GenerationPrompt prompt;
    prompt.prompt_ids =
        chat.encode_prompt(record.prompt, !record.image.empty(), policy.config.image_tokens());
    if (!record.image.empty()) {
      prompt.pixel_values = pixels_to_tensor(load_pixels(record, config_.image))
                                .to(param.device(), param.scalar_type());  // (3, H, W)
    }
    const std::uint64_t seed =
        record_seed(config_.run.seed + static_cast<std::uint64_t>(step), record.id);
    for (int n = 0; n < config_.sampling.num_answers; ++n) {
      prompt.seeds.push_back(answer_seed(seed, n));
    }
    prompt.name = record.source.to_string();
    prompts.push_back(std::move(prompt));
    chosen.push_back(record);
  }
  GenerationOptions options;
  options.max_new_tokens = config_.sampling.max_new_tokens;
  options.stop_ids = {policy.tokenizer->eos_id()};
  options.sampler = SamplerOptions::from(config_.sampling);
  options.pad_id = std::max(policy.tokenizer->pad_id(), 0);
  auto answers = generate(*policy.model, prompts, options);  // eval mode, restored afterwards

  const RewardOptions reward_options = reward_options_from(config_.reward);
  std::vector<PreferenceList> lists;
  for (std::size_t r = 0; r < chosen.size(); ++r) {
    PreferenceList list;
    list.record = chosen[r];
    const std::string name = config_.reward.name.empty() ? default_reward_for_task(list.record.task)
                                                         : config_.reward.name;
    const RewardSpec& reward = find_reward(name);
    for (const GeneratedAnswer& answer : answers[r]) {
      list.answers.push_back(policy.tokenizer->decode(answer.ids));
      list.rewards.push_back(
          reward.score(list.answers.back(), list.record.ground_truth, reward_options).score);
    }
    lists.push_back(std::move(list));
  }
  return lists;
}

}  // namespace perpo
