#include "perpo/generate/record_prompts.h"

#include <torch/torch.h>

#include "perpo/core/error.h"
#include "perpo/data/collate.h"

namespace perpo {

std::string record_name(const DatasetRecord& record) {
  return record.source.to_string() + " (id " + record.id + ")";
}

void check_model_matches(const ModelConfig& model, const Tokenizer& tokenizer,
                         const ChatTemplate& chat, const ImageConfig& image) {
  const std::string file = tokenizer.model_path().string();
  if (tokenizer.vocab_size() > model.text.vocab_size) {
    throw input_error("tokenizer ", file, " has ", tokenizer.vocab_size(),
                      " token ids but the model's vocabulary (text_config.vocab_size) has ",
                      model.text.vocab_size)
        .hint("use the tokenizer that belongs to this model (tokenizer.path)");
  }
  if (chat.image_token_id() != model.image_token_index) {
    throw input_error("tokenizer ", file, " gives the image placeholder id ", chat.image_token_id(),
                      " but the model expects image_token_index ", model.image_token_index)
        .hint("use the tokenizer that belongs to this model, or set tokenizer.image_token");
  }
  if (image.size != model.vision.image_size) {
    throw input_error("image.size is ", image.size, " but the model's vision tower takes ",
                      model.vision.image_size, "-pixel images")
        .hint("set image.size=" + std::to_string(model.vision.image_size));
  }
}

RecordPrompts::RecordPrompts(const ModelConfig& model, const Tokenizer& tokenizer,
                             const Config& config)
    : tokenizer_(tokenizer),
      chat_(tokenizer, config.tokenizer),
      encoder_(chat_, config.data, model.image_tokens()),
      image_(config.image) {
  check_model_matches(model, tokenizer, chat_, config.image);
}

GenerationPrompt RecordPrompts::build(const DatasetRecord& record) {
  GenerationPrompt prompt;
  prompt.prompt_ids = encoder_.encode_sft(record).prompt_ids;
  prompt.pixel_values = pixels(record);
  prompt.name = record_name(record);
  return prompt;
}

torch::Tensor RecordPrompts::pixels(const DatasetRecord& record) const {
  if (record.image.empty()) return {};
  return pixels_to_tensor(load_pixels(record, image_));  // (3, H, W)
}

ListExample RecordPrompts::encode_list(const PreferenceList& list) {
  return encoder_.encode_list(list);
}

std::string RecordPrompts::answer_text(const std::vector<int>& ids) const {
  return tokenizer_.decode(ids, /*skip_special=*/true);
}

}  // namespace perpo
