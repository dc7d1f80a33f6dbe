// ChatMlTemplate: Qwen2.5-VL's ChatML prompt (see chatml_template.h).
#include "perpo/tokenizer/chatml_template.h"

#include <algorithm>
#include <utility>

#include "perpo/core/error.h"

namespace perpo {

ChatMlTemplate::ChatMlTemplate(const TextTokenizer& tokenizer, std::string system_prompt)
    : tokenizer_(tokenizer),
      system_prompt_(system_prompt.empty() ? std::string(kQwen2SystemPrompt)
                                           : std::move(system_prompt)) {
  for (const char* token :
       {"<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<|vision_end|>"}) {
    if (!tokenizer_.added_token_id(token)) {
      throw input_error("tokenizer ", tokenizer_.model_path().string(), " has no added token '",
                        token, "', which Qwen2.5-VL's ChatML template needs")
          .hint("use the tokenizer of a Qwen2-VL / Qwen2.5-VL checkpoint");
    }
  }
  image_token_id_ = *tokenizer_.added_token_id("<|image_pad|>");
  im_end_id_ = *tokenizer_.added_token_id("<|im_end|>");
}

std::string ChatMlTemplate::prompt_text(std::string_view question, bool has_image) const {
  std::string text = "<|im_start|>system\n" + system_prompt_ + "<|im_end|>\n<|im_start|>user\n";
  if (has_image) text += "<|vision_start|><|image_pad|><|vision_end|>";
  text += question;
  text += "<|im_end|>\n<|im_start|>assistant\n";
  return text;
}

std::vector<int> ChatMlTemplate::encode_prompt(std::string_view question, bool has_image,
                                               int image_tokens) const {
  PERPO_CHECK(image_tokens >= 1, "image_tokens must be >= 1, got ", image_tokens);
  const std::vector<int> ids = tokenizer_.encode(prompt_text(question, has_image));
  std::vector<int> expanded;
  expanded.reserve(ids.size() + static_cast<std::size_t>(image_tokens));
  for (int id : ids) {  // every <|image_pad|>, as Qwen2_5_VLProcessor replaces them all
    expanded.insert(expanded.end(), id == image_token_id_ ? image_tokens : 1, id);
  }
  return expanded;
}

std::vector<int> ChatMlTemplate::encode_answer(std::string_view answer, int max_tokens,
                                               bool* truncated) const {
  std::vector<int> ids = tokenizer_.encode(answer);
  ids.push_back(im_end_id_);
  if (truncated) *truncated = false;
  if (max_tokens > 0 && static_cast<int>(ids.size()) > max_tokens) {
    ids.resize(static_cast<std::size_t>(max_tokens));
    if (truncated) *truncated = true;
  }
  return ids;
}

ChatTokens ChatMlTemplate::encode(std::string_view question, std::string_view answer,
                                  bool has_image, int image_tokens) const {
  return ChatTokens::join(encode_prompt(question, has_image, image_tokens), encode_answer(answer));
}

}  // namespace perpo
