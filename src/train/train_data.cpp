// Training data: records -> encoded examples -> per-list tensors -> log-probs (train_data.h).
#include "perpo/train/train_data.h"

#include <cstdio>

#include <ATen/record_function.h>
#include <torch/torch.h>

#include <memory>
#include <sstream>

#include "perpo/batch/collate.h"
#include "perpo/core/error.h"
#include "perpo/data/jsonl.h"
#include "perpo/generate/record_prompts.h"
#include "perpo/tokenizer/chat_template.h"

namespace perpo {

bool is_sft(const Config& config) { return config.loss.name == "sft"; }

std::string TrainData::summary(const Config& config) const {
  std::ostringstream out;
  out << examples.size() << (is_sft(config) ? " records" : " lists");
  if (!is_sft(config)) {
    out << " (";
    bool first = true;
    for (const auto& [n, count] : lists_by_size) {
      out << (first ? "" : ", ") << "N=" << n << ": " << count;
      first = false;
    }
    out << ")";
  }
  out << "; " << truncated_answers << " answers truncated to " << config.data.max_answer_tokens
      << " tokens; " << skipped_records << " records skipped";
  return out.str();
}

namespace {

void check_not_empty(const TrainData& data, const Config& config) {
  if (data.examples.empty()) {
    throw input_error("data.train ", config.data.train, " holds no usable record")
        .hint(is_sft(config) ? "sft reads dataset records (id, image, prompt, ground_truth)"
                             : "list losses read preference lists (answers, rewards)");
  }
}

}  // namespace

TrainData encode_lists(const std::vector<PreferenceList>& lists, const Config& config,
                       const LoadedModel& model) {
  ChatTemplate chat(*model.tokenizer, config.tokenizer);
  ExampleEncoder encoder(chat, config.data, image_token_counter(*model.model));
  encoder.set_target_text(box_targets(*model.model, config.reward));
  const bool with_target = config.loss.nll_weight > 0;
  TrainData data;
  for (const PreferenceList& list : lists) {
    TrainExample example;
    example.list = encoder.encode_list(list);
    if (with_target) {
      PERPO_CHECK_INPUT(!list.record.ground_truth.empty(), list.record.source.to_string(),
                        ": loss.nll_weight > 0 needs the list's ground_truth");
      example.target_ids = encoder.encode_sft(list.record).answer_ids;
    }
    example.record = list.record;
    ++data.lists_by_size[list.answers.size()];
    data.examples.push_back(std::move(example));
  }
  data.truncated_answers = encoder.truncated_answers();
  return data;
}

TrainData load_train_data(const Config& config, const LoadedModel& model) {
  PERPO_CHECK_INPUT(!config.data.train.empty(), "key 'data.train' is empty: nothing to train on");
  ReadOptions options = ReadOptions::from(config.data);
  ReadReport report;
  TrainData data;
  if (is_sft(config)) {
    std::vector<DatasetRecord> records = read_dataset(config.data.train, options, &report);
    ChatTemplate chat(*model.tokenizer, config.tokenizer);
    ExampleEncoder encoder(chat, config.data, image_token_counter(*model.model));
    encoder.set_target_text(box_targets(*model.model, config.reward));
    for (DatasetRecord& record : records) {
      SftExample sft = encoder.encode_sft(record);
      TrainExample example;
      example.list.prompt_ids = std::move(sft.prompt_ids);
      example.list.answer_ids.push_back(std::move(sft.answer_ids));
      example.list.source = record.source;
      example.record = std::move(record);
      ++data.lists_by_size[1];
      data.examples.push_back(std::move(example));
    }
    data.truncated_answers = encoder.truncated_answers();
  } else {
    std::vector<PreferenceList> lists =
        read_lists(config.data.train, config.data.format, options, &report);
    data = encode_lists(lists, config, model);
  }
  data.skipped_records = report.skipped;
  check_not_empty(data, config);
  return data;
}

ListTensors list_tensors(const TrainExample& example, const Config& config,
                         const VisionLanguageModel& model, const c10::Device& device,
                         c10::ScalarType pixel_dtype, int pad_id) {
  const ListExample& list = example.list;
  ListTensors out;
  out.answers = static_cast<std::int64_t>(list.answer_ids.size());
  out.has_target = !example.target_ids.empty();
  std::vector<const std::vector<int>*> rows;
  for (const auto& answer : list.answer_ids) rows.push_back(&answer);
  if (out.has_target) rows.push_back(&example.target_ids);
  std::int64_t longest = 0;
  for (const auto* row : rows) {
    PERPO_CHECK(!row->empty(), list.source.to_string(), ": an answer has no tokens");
    longest = std::max<std::int64_t>(longest, row->size());
  }
  const auto R = static_cast<std::int64_t>(rows.size());
  at::Tensor ids = torch::full({R, longest}, pad_id >= 0 ? pad_id : 0, torch::kInt64);  // (R, A)
  at::Tensor mask = torch::zeros({R, longest}, torch::kInt64);                          // (R, A)
  auto ids_a = ids.accessor<std::int64_t, 2>();
  auto mask_a = mask.accessor<std::int64_t, 2>();
  std::int64_t answer_tokens = 0;
  for (std::int64_t r = 0; r < R; ++r) {
    for (std::size_t t = 0; t < rows[r]->size(); ++t) {
      ids_a[r][t] = (*rows[r])[t];
      mask_a[r][t] = 1;
    }
    answer_tokens += static_cast<std::int64_t>(rows[r]->size());
  }
  std::vector<std::int64_t> prompt(list.prompt_ids.begin(), list.prompt_ids.end());
  out.prefix_ids = torch::tensor(prompt, torch::kInt64).unsqueeze(0).to(device);  // (1, P)
  out.answer_ids = ids.to(device);
  out.answer_mask = mask.to(device);
  if (!example.record.image.empty()) {
    const ModelImage image =
        model.join_images({model.prepare_image(load_record_image(example.record), config.image)})
            .to(torch::TensorOptions().device(device).dtype(pixel_dtype));
    out.pixel_values = image.pixel_values;
    out.grid_thw = image.grid_thw;
  }
  if (!list.rewards.empty()) {
    out.rewards = torch::tensor(list.rewards, torch::kFloat64).to(torch::kFloat32).to(device);
  }
  if (!list.ref_logps.empty()) {
    out.ref_logps = torch::tensor(list.ref_logps, torch::kFloat64).to(torch::kFloat32).to(device);
  }
  if (!list.sample_token_logps.empty()) {
    const auto N = out.answers;
    at::Tensor old = torch::zeros({N, longest}, torch::kFloat32);  // (N, A)
    auto old_a = old.accessor<float, 2>();
    for (std::int64_t n = 0; n < N; ++n) {
      const std::vector<double>& row = list.sample_token_logps[n];
      for (std::size_t t = 0; t < row.size(); ++t) old_a[n][t] = static_cast<float>(row[t]);
    }
    out.sample_token_logps = old.to(device);
  }
  out.tokens = static_cast<std::int64_t>(prompt.size()) + answer_tokens;
  return out;
}

ListLogps score_list(VisionLanguageModel& model, const ListTensors& tensors) {
  PrefixState prefix;
  {
    RECORD_USER_SCOPE("encode_prefix");
    prefix =
        model.encode_prefix(tensors.prefix_ids, ModelImage(tensors.pixel_values, tensors.grid_thw));
  }
  at::Tensor token_logps;
  {
    RECORD_USER_SCOPE("answer_logps");
    token_logps = model.answer_logps(prefix, tensors.answer_ids, tensors.answer_mask);  // (R, A)
  }
  at::Tensor tokens32 = token_logps.to(torch::kFloat32);                // (R, A)
  at::Tensor sums = tokens32.sum(1);                                    // (R)
  at::Tensor lengths = tensors.answer_mask.sum(1).to(torch::kFloat32);  // (R)
  ListLogps out;
  const std::int64_t N = tensors.answers;
  out.answers = sums.narrow(0, 0, N);                                        // (N)
  out.token_logps = tokens32.narrow(0, 0, N);                                // (N, A)
  out.token_mask = tensors.answer_mask.narrow(0, 0, N).to(torch::kFloat32);  // (N, A)
  out.tokens = lengths.narrow(0, 0, N);                                      // (N)
  if (tensors.has_target) out.target_nll = -sums[N] / lengths[N];            // ()
  return out;
}

std::string TrainData::fingerprint() const {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  auto mix = [&h](const void* bytes, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(bytes);
    for (std::size_t i = 0; i < size; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  };
  auto mix_ints = [&](const std::vector<int>& ids) {
    const std::size_t n = ids.size();
    mix(&n, sizeof n);
    mix(ids.data(), n * sizeof(int));
  };
  auto mix_doubles = [&](const std::vector<double>& values) {
    const std::size_t n = values.size();
    mix(&n, sizeof n);
    mix(values.data(), n * sizeof(double));
  };
  const std::size_t count = examples.size();
  mix(&count, sizeof count);
  for (const TrainExample& example : examples) {
    mix_ints(example.list.prompt_ids);
    for (const auto& answer : example.list.answer_ids) mix_ints(answer);
    mix_doubles(example.list.rewards);
    mix_doubles(example.list.ref_logps);
    for (const auto& row : example.list.sample_token_logps) mix_doubles(row);
    mix_ints(example.target_ids);
    const std::string image = example.record.image_path.string();
    mix(image.data(), image.size() + 1);
  }
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(h));
  return text;
}

}  // namespace perpo
