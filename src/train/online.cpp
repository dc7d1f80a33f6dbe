// Online mode's sampler: generate + reward (online.h).
#include "perpo/train/online.h"

#include <algorithm>

#include <torch/torch.h>

#include "perpo/core/error.h"
#include "perpo/data/collate.h"
#include "perpo/data/examples.h"
#include "perpo/generate/generator.h"
#include "perpo/generate/record_prompts.h"
#include "perpo/reward/reward.h"
#include "perpo/reward/reward_config.h"
#include "perpo/tokenizer/chat_template.h"
#include "perpo/train/reference.h"
#include "perpo/train/train_data.h"

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
  const std::int64_t every = std::max(config_.train.online_resample_every, 1);
  const std::int64_t call = std::max<std::int64_t>(step / every - 1, 0);  // 0 for the first call
  const std::size_t first = static_cast<std::size_t>(call) * lists_per_call_;
  std::vector<DatasetRecord> chosen;
  std::vector<GenerationPrompt> prompts;
  for (std::size_t k = 0; k < lists_per_call_; ++k) {
    const DatasetRecord& record = records_[(first + k) % records_.size()];
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
    const RewardSpec& reward =
        reward_for_task(list.record.task, config_.reward.name, record_name(list.record));
    for (const GeneratedAnswer& answer : answers[r]) {
      list.answers.push_back(policy.tokenizer->decode(answer.ids));
      list.rewards.push_back(
          reward.score(list.answers.back(), list.record.ground_truth, reward_options).score);
    }
    lists.push_back(std::move(list));
  }
  return lists;
}

void fill_frozen_start_logps(std::vector<PreferenceList>& lists, LoadedModel& policy,
                             LlavaModelImpl* live, const Config& config) {
  const bool adapters_off = live == nullptr && adapters_are_all_that_trains(*policy.model);
  TrainData encoded = encode_lists(lists, config, policy);
  for (std::size_t i = 0; i < lists.size(); ++i) {
    if (!lists[i].ref_logps.empty()) continue;
    const TrainExample& example = encoded.examples[i];
    if (live != nullptr) {
      lists[i].ref_logps = reference_logps(*live, example, config);
    } else if (adapters_off) {
      lists[i].ref_logps = frozen_start_logps(*policy.model, example, config);
    } else {
      throw input_error(example.list.source.to_string(), ": a re-sampled list has no ref_logps")
          .hint(
              "online mode needs loss.reference=live, LoRA alone trained, or a sampler that "
              "fills ref_logps");
    }
  }
}

void fill_sampler_logps(std::vector<PreferenceList>& lists, LoadedModel& policy,
                        const Config& config) {
  TrainData encoded = encode_lists(lists, config, policy);
  for (std::size_t i = 0; i < lists.size(); ++i) {
    lists[i].ref_logps = reference_logps(*policy.model, encoded.examples[i], config);
  }
}

nlohmann::json online_lists_to_json(const std::vector<PreferenceList>& lists) {
  nlohmann::json out = nlohmann::json::array();
  for (const PreferenceList& list : lists) {
    const DatasetRecord& r = list.record;
    out.push_back({{"id", r.id},
                   {"task", r.task},
                   {"image", r.image},
                   {"image_path", r.image_path.string()},
                   {"prompt", r.prompt},
                   {"ground_truth", r.ground_truth},
                   {"source_file", r.source.file.string()},
                   {"source_line", r.source.line},
                   {"answers", list.answers},
                   {"rewards", list.rewards},
                   {"ref_logps", list.ref_logps}});
  }
  return out;
}

std::vector<PreferenceList> online_lists_from_json(const nlohmann::json& json) {
  PERPO_CHECK_INPUT(json.is_array(), "trainer_state.json: online.lists is not an array");
  std::vector<PreferenceList> lists;
  for (const nlohmann::json& item : json) {
    try {
      PreferenceList list;
      DatasetRecord& r = list.record;
      r.id = item.at("id").get<std::string>();
      r.task = item.at("task").get<std::string>();
      r.image = item.at("image").get<std::string>();
      r.image_path = item.at("image_path").get<std::string>();
      r.prompt = item.at("prompt").get<std::string>();
      r.ground_truth = item.at("ground_truth").get<std::string>();
      r.source.file = item.at("source_file").get<std::string>();
      r.source.line = item.at("source_line").get<std::size_t>();
      list.answers = item.at("answers").get<std::vector<std::string>>();
      list.rewards = item.at("rewards").get<std::vector<double>>();
      list.ref_logps = item.at("ref_logps").get<std::vector<double>>();
      lists.push_back(std::move(list));
    } catch (const nlohmann::json::exception& e) {
      throw input_error("trainer_state.json: online.lists[", lists.size(), "]: ", e.what());
    }
  }
  return lists;
}

}  // namespace perpo
