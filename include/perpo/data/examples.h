// From records to token ids (and pixels): what collation (collate.h) stacks into tensors.
// No LibTorch here.
//
//   perpo::ChatTemplate chat(tokenizer, config.tokenizer);
//   perpo::ExampleEncoder encoder(chat, config.data, model_config.image_tokens());  // 576
//   perpo::ListExample example = encoder.encode_list(list);
//   perpo::PixelValues pixels = perpo::load_pixels(list.record, config.image);
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/core/error.h"
#include "perpo/data/records.h"
#include "perpo/image/image.h"
#include "perpo/tokenizer/chat_template.h"

namespace perpo {

/// One SFT example: the prompt (template, image tokens) and the ground-truth answer.
struct SftExample {
  std::vector<int> prompt_ids;  // BOS, template, image placeholder x image_tokens
  std::vector<int> answer_ids;  // ground truth + EOS (cut to data.max_answer_tokens)
  RecordSource source;
};

/// One preference list: a prompt shared by N answers.
struct ListExample {
  std::vector<int> prompt_ids;               // the shared prefix
  std::vector<std::vector<int>> answer_ids;  // N answers, each + EOS (cut to max_answer_tokens)
  std::vector<double> rewards;               // N
  std::vector<double> ref_logps;             // N, or empty when the list has none
  // N rows of the sampling model's token log-probs, each as long as its answer_ids row (cut like
  // it), or empty when the list has none.
  std::vector<std::vector<double>> sample_token_logps;
  RecordSource source;
};

class ExampleEncoder {
 public:
  /// `image_tokens`: copies of the image placeholder in each prompt (ModelConfig::image_tokens(),
  /// 576 for LLaVA-1.5-336; 1 for a model that expands the placeholder itself).
  /// Keeps a reference to `chat`, which must outlive the encoder.
  ExampleEncoder(const ChatTemplate& chat, const DataConfig& config, int image_tokens);
  /// Image placeholder copies that depend on the record's image (Qwen2.5-VL: its merged patch
  /// count); called for records with an image only, its errors should name the record.
  using ImageTokens = std::function<int(const DatasetRecord&)>;
  ExampleEncoder(const ChatTemplate& chat, const DataConfig& config, ImageTokens image_tokens);

  /// The answer text an SFT example of a record trains on; default its ground_truth. A model
  /// family that writes boxes in other units rewrites grounding truths (generate's
  /// BoxConvention::target).
  using TargetText = std::function<std::string(const DatasetRecord&)>;
  void set_target_text(TargetText target_text) { target_text_ = std::move(target_text); }
  /// Throws perpo::Error (input) naming the record's file and line when the prompt has more than
  /// data.max_prompt_tokens ids. Longer answers are cut and counted (truncated_answers()).
  SftExample encode_sft(const DatasetRecord& record);
  /// Also checks that each row of the list's sample_token_logps has one value per token of its
  /// answer (EOS included; before or after the cut to data.max_answer_tokens) and cuts it like
  /// the answer.
  ListExample encode_list(const PreferenceList& list);

  /// The prompt ids alone, with the checks of encode_sft (a single image placeholder in records
  /// with an image, none without; at most data.max_prompt_tokens ids).
  std::vector<int> encode_prompt(const DatasetRecord& record) const;

  std::size_t truncated_answers() const { return truncated_answers_; }

 private:
  /// `full_length`, when given, receives the answer's token count before the cut.
  std::vector<int> encode_answer(const std::string& answer, std::size_t* full_length = nullptr);

  const ChatTemplate& chat_;
  DataConfig config_;
  ImageTokens image_tokens_;
  TargetText target_text_;
  std::size_t truncated_answers_ = 0;
};

/// work(), its perpo::Error messages prefixed with the record's file and line.
template <typename F>
auto naming_record(const DatasetRecord& record, F&& work) {
  try {
    return work();
  } catch (const Error& e) {
    throw Error(e.kind(), record.source.to_string() + ": " + e.message()).hint(e.hint_text());
  }
}

/// The record's image, decoded (no preprocessing); errors name the record's file and line.
RgbImage load_record_image(const DatasetRecord& record);

/// The record's image, decoded and preprocessed; errors name the record's file and line.
PixelValues load_pixels(const DatasetRecord& record, const ImageConfig& config);

}  // namespace perpo
