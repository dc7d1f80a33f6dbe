// ChatMlTemplate: Qwen2.5-VL's ChatML prompt (system, user turn with the image placeholders,
// assistant turn) over the byte-level BPE tokenizer, as its chat_template and
// Qwen2_5_VLProcessor build it.
//
//   perpo::BpeTokenizer tokenizer("Qwen2.5-VL-3B-Instruct");
//   perpo::ChatMlTemplate chat(tokenizer);
//   std::vector<int> prompt = chat.encode_prompt("Read the text.", /*has_image=*/true, 64);
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "perpo/tokenizer/chat_template.h"
#include "perpo/tokenizer/text_tokenizer.h"

namespace perpo {

/// Qwen2.5-VL's default system prompt (its chat_template adds it when a conversation has none).
inline constexpr std::string_view kQwen2SystemPrompt = "You are a helpful assistant.";

/// Qwen2.5-VL's ChatML prompt, as its chat_template and Qwen2_5_VLProcessor build it:
///   prompt: "<|im_start|>system\n<system><|im_end|>\n<|im_start|>user\n"
///           "<|vision_start|><|image_pad|>...<|vision_end|><question><|im_end|>\n"
///           "<|im_start|>assistant\n"
///   answer: "<answer><|im_end|>"
/// with <|image_pad|> repeated `image_tokens` times (the image's merged patch count,
/// grid_t * grid_h * grid_w / merge_size^2). The prompt and the answer are encoded apart; since
/// "\n" is a piece of its own in Qwen2's regex and <|im_end|> an added token, this equals the
/// ids of the whole conversation (the template's trailing "\n" after the answer aside).
class ChatMlTemplate {
 public:
  /// `system_prompt` empty = kQwen2SystemPrompt. Keeps a reference to `tokenizer`, which must
  /// outlive this object. Throws perpo::Error (input) naming the tokenizer file when one of
  /// <|im_start|>, <|im_end|>, <|vision_start|>, <|image_pad|>, <|vision_end|> is missing.
  explicit ChatMlTemplate(const TextTokenizer& tokenizer, std::string system_prompt = {});

  /// The prompt text before tokenizing (one <|image_pad|> when `has_image`).
  std::string prompt_text(std::string_view question, bool has_image) const;
  /// Prompt ids, each <|image_pad|> repeated `image_tokens` times; ends with "assistant\n".
  std::vector<int> encode_prompt(std::string_view question, bool has_image,
                                 int image_tokens = 1) const;
  /// Answer ids: the answer then <|im_end|>. When `max_tokens` > 0 and the ids are more, the
  /// first `max_tokens` are kept (no <|im_end|> then) and `*truncated` is set.
  std::vector<int> encode_answer(std::string_view answer, int max_tokens = 0,
                                 bool* truncated = nullptr) const;
  /// encode_prompt + encode_answer with the mask that picks the answer.
  ChatTokens encode(std::string_view question, std::string_view answer, bool has_image,
                    int image_tokens = 1) const;

  const std::string& system_prompt() const { return system_prompt_; }
  int image_token_id() const { return image_token_id_; }
  int im_end_id() const { return im_end_id_; }
  const TextTokenizer& tokenizer() const { return tokenizer_; }

 private:
  const TextTokenizer& tokenizer_;
  std::string system_prompt_;
  int image_token_id_ = -1;
  int im_end_id_ = -1;
};

}  // namespace perpo
