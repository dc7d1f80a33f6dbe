// Records -> token ids and pixels (see examples.h).
#include "perpo/data/examples.h"

#include <algorithm>
#include <utility>

#include "perpo/core/error.h"

namespace perpo {

ExampleEncoder::ExampleEncoder(const ChatTemplate& chat, const DataConfig& config, int image_tokens)
    : chat_(chat),
      config_(config),
      image_tokens_([image_tokens](const DatasetRecord&) { return image_tokens; }) {
  PERPO_CHECK(image_tokens >= 1, "image_tokens must be >= 1, got ", image_tokens);
}

ExampleEncoder::ExampleEncoder(const ChatTemplate& chat, const DataConfig& config,
                               ImageTokens image_tokens)
    : chat_(chat), config_(config), image_tokens_(std::move(image_tokens)) {
  PERPO_CHECK(image_tokens_ != nullptr, "ExampleEncoder needs an image token count");
}

std::vector<int> ExampleEncoder::encode_prompt(const DatasetRecord& record) const {
  // The model places one image's features at one placeholder: a prompt with several, or one
  // without an image to fill it, is a bad record (named here, skippable with on_bad_record=skip).
  const std::string& placeholder = chat_.image_token();
  std::size_t placeholders = 0;
  for (std::size_t at = record.prompt.find(placeholder); at != std::string::npos;
       at = record.prompt.find(placeholder, at + placeholder.size())) {
    ++placeholders;
  }
  if (placeholders > 1 || (placeholders == 1 && record.image.empty())) {
    throw input_error(record.source.to_string(), ": the prompt holds ", placeholders,
                      " image placeholder(s) '", placeholder, "' but the record has ",
                      record.image.empty() ? "no image" : "one image")
        .hint(
            "write the placeholder at most once, and only in records with an image (perpo "
            "adds it before the prompt when it is absent)");
  }
  const int image_tokens = record.image.empty() ? 1 : image_tokens_(record);
  std::vector<int> ids = chat_.encode_prompt(record.prompt, !record.image.empty(), image_tokens);
  if (config_.max_prompt_tokens > 0 && static_cast<int>(ids.size()) > config_.max_prompt_tokens) {
    throw input_error(record.source.to_string(), ": the prompt has ", ids.size(),
                      " tokens (image tokens included), more than data.max_prompt_tokens = ",
                      config_.max_prompt_tokens)
        .hint("shorten the prompt or raise data.max_prompt_tokens");
  }
  return ids;
}

std::vector<int> ExampleEncoder::encode_answer(const std::string& answer,
                                               std::size_t* full_length) {
  std::vector<int> ids = chat_.encode_answer(answer, /*max_tokens=*/0);
  if (full_length) *full_length = ids.size();
  const auto limit = static_cast<std::size_t>(std::max(config_.max_answer_tokens, 0));
  if (limit > 0 && ids.size() > limit) {
    ids.resize(limit);  // a cut answer has no EOS: it did not end there
    ++truncated_answers_;
  }
  return ids;
}

SftExample ExampleEncoder::encode_sft(const DatasetRecord& record) {
  SftExample example;
  example.prompt_ids = encode_prompt(record);
  example.answer_ids = encode_answer(target_text_ ? target_text_(record) : record.ground_truth);
  example.source = record.source;
  return example;
}

ListExample ExampleEncoder::encode_list(const PreferenceList& list) {
  validate_list(list, /*require_rewards=*/true);
  ListExample example;
  example.prompt_ids = encode_prompt(list.record);
  for (std::size_t i = 0; i < list.answers.size(); ++i) {
    std::size_t full_length = 0;
    example.answer_ids.push_back(encode_answer(list.answers[i], &full_length));
    if (!list.has_sample_token_logps()) continue;
    const std::vector<double>& row = list.sample_token_logps[i];
    const std::size_t cut_length = example.answer_ids.back().size();
    // A sampler that cut the answer to data.max_answer_tokens itself kept the cut length.
    if (row.size() != full_length && row.size() != cut_length) {
      throw input_error(list.record.source.to_string(), ": sample_token_logps row ", i, " has ",
                        row.size(), " values but answer ", i, " is ", full_length,
                        " tokens (end of sequence included) under this tokenizer")
          .hint(
              "the lists were sampled with another tokenizer or template; sample them again "
              "with this model and sampling.token_logps=true");
    }
    example.sample_token_logps.emplace_back(
        row.begin(), row.begin() + static_cast<std::ptrdiff_t>(example.answer_ids.back().size()));
  }
  example.rewards = list.rewards;
  example.ref_logps = list.ref_logps;
  example.source = list.record.source;
  return example;
}

RgbImage load_record_image(const DatasetRecord& record) {
  return naming_record(record, [&] { return load_image(record.image_path); });
}

PixelValues load_pixels(const DatasetRecord& record, const ImageConfig& config) {
  return naming_record(record,
                       [&] { return preprocess_image(load_image(record.image_path), config); });
}

}  // namespace perpo
