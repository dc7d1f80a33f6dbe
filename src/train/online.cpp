// Online mode's sampler: a record chooser over generate's ListSampler (online.h).
#include "perpo/train/online.h"

#include <algorithm>
#include <unordered_map>

#include "perpo/core/error.h"
#include "perpo/generate/record_prompts.h"
#include "perpo/generate/sample_lists.h"

namespace perpo {

OnlineSampler::OnlineSampler(const Config& config, std::vector<DatasetRecord> records,
                             std::size_t lists_per_call)
    : config_(config), records_(std::move(records)), lists_per_call_(lists_per_call) {
  PERPO_CHECK_INPUT(!records_.empty(), "online mode has no records to sample for");
  for (const DatasetRecord& record : records_) {
    PERPO_CHECK_INPUT(!record.ground_truth.empty(), record.source.to_string(),
                      ": online mode scores new answers against the ground_truth, which is empty");
  }
  // The sampling policy's own log-probs are the reference only for loss.reference: sampler.
  config_.sampling.reference_logps = config_.loss.reference == "sampler";
  // loss.name grpo trains each list over K steps: the sampling policy's token log-probs are the
  // old policy of its ratios (at K = 1 every list is on-policy and the ratio is 1 without them).
  config_.sampling.token_logps =
      config_.loss.name == "grpo" && config_.train.online_resample_every > 1;
}

std::vector<DatasetRecord> OnlineSampler::records_for(std::int64_t step) const {
  const std::int64_t every = std::max(config_.train.online_resample_every, 1);
  // The first call is at step K, or at step 0 for grpo (online.h).
  const std::int64_t call =
      config_.loss.name == "grpo" ? step / every : std::max<std::int64_t>(step / every - 1, 0);
  const std::size_t count = std::min(std::max<std::size_t>(lists_per_call_, 1), records_.size());
  const std::size_t first = static_cast<std::size_t>(call) * count;
  std::vector<DatasetRecord> chosen;
  for (std::size_t k = 0; k < count; ++k) chosen.push_back(records_[(first + k) % records_.size()]);
  return chosen;
}

std::vector<PreferenceList> OnlineSampler::operator()(LoadedModel& policy, std::int64_t step) {
  RecordPrompts prompts(*policy.model, *policy.tokenizer, config_);
  ListSampler sampler(*policy.model, prompts, config_);
  sampler.set_seed(config_.run.seed + static_cast<std::uint64_t>(step));
  const std::vector<DatasetRecord> chosen = records_for(step);
  // Data parallel: this rank's share (each answer's stream depends on the record, not the batch).
  const bool sharded = group_ != nullptr && group_->world() > 1;
  std::vector<DatasetRecord> mine;
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    if (!sharded ||
        i % static_cast<std::size_t>(group_->world()) == static_cast<std::size_t>(group_->rank())) {
      mine.push_back(chosen[i]);
    }
  }
  SampledBatch sampled = sampler.sample_in_batches(mine);
  std::vector<PreferenceList> lists;
  std::map<std::string, double> reward_sum, answers, all_equal;
  auto short_lists = static_cast<double>(sampled.short_lists);
  for (std::size_t i = 0; i < sampled.lists.size(); ++i) {
    PreferenceList& list = sampled.lists[i];
    const std::string& task = list.record.task;
    for (std::size_t a = 0; a < sampled.sampled[i]; ++a) reward_sum[task] += list.rewards[a];
    answers[task] += static_cast<double>(sampled.sampled[i]);
    const auto [lo, hi] = std::minmax_element(list.rewards.begin(), list.rewards.end());
    all_equal[task] += *lo == *hi ? 1.0 : 0.0;
    lists.push_back(std::move(list));
  }
  if (sharded) {  // every rank's lists, in the records' order, and the sums of every rank
    const nlohmann::json part = {{"lists", online_lists_to_json(lists)},
                                 {"reward_sum", reward_sum},
                                 {"answers", answers},
                                 {"all_equal", all_equal},
                                 {"short_lists", short_lists}};
    std::unordered_map<std::string, std::size_t> index_of;
    for (std::size_t i = 0; i < chosen.size(); ++i) index_of.emplace(chosen[i].id, i);
    lists.clear();
    reward_sum.clear();
    answers.clear();
    all_equal.clear();
    short_lists = 0;
    for (const std::string& text : group_->all_gather(part.dump())) {
      const nlohmann::json other = nlohmann::json::parse(text);
      for (PreferenceList& list : online_lists_from_json(other.at("lists"))) {
        lists.push_back(std::move(list));
      }
      for (const auto& [task, v] : other.at("reward_sum").items())
        reward_sum[task] += v.get<double>();
      for (const auto& [task, v] : other.at("answers").items()) answers[task] += v.get<double>();
      for (const auto& [task, v] : other.at("all_equal").items())
        all_equal[task] += v.get<double>();
      short_lists += other.at("short_lists").get<double>();
    }
    std::stable_sort(lists.begin(), lists.end(), [&](const auto& a, const auto& b) {
      return index_of.at(a.record.id) < index_of.at(b.record.id);
    });
  }
  last_metrics_.clear();
  double total_sum = 0, total_answers = 0;
  for (const auto& [task, count] : answers) {
    if (count > 0) last_metrics_["online/" + task + "/mean_reward"] = reward_sum[task] / count;
    last_metrics_["online/" + task + "/all_equal_lists"] = all_equal[task];
    total_sum += reward_sum[task];
    total_answers += count;
  }
  last_metrics_["online/lists"] = static_cast<double>(lists.size());
  if (total_answers > 0) last_metrics_["online/mean_reward"] = total_sum / total_answers;
  last_metrics_["online/short_lists"] = short_lists;
  return lists;
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
    if (list.has_sample_token_logps()) out.back()["sample_token_logps"] = list.sample_token_logps;
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
      if (item.contains("sample_token_logps")) {
        list.sample_token_logps =
            item.at("sample_token_logps").get<std::vector<std::vector<double>>>();
      }
      lists.push_back(std::move(list));
    } catch (const nlohmann::json::exception& e) {
      throw input_error("trainer_state.json: online.lists[", lists.size(), "]: ", e.what());
    }
  }
  return lists;
}

}  // namespace perpo
