// Chat templates: how a user prompt and an answer become token ids, with the answer kept apart so
// that only its tokens carry loss / log-probs.
//
//   vicuna_v1 (LLaVA-1.5, `conv_vicuna_v1` in LLaVA's llava/conversation.py; the PerPO authors'
//   run scripts pass `--version v1`, which selects it):
//     prompt: "<system> USER: <image>\n<prompt> ASSISTANT:"
//     answer: " <answer></s>"
//   plain (perpo's own; not LLaVA's pretraining layout):
//     prompt: "<image>\n<prompt>"
//     answer: " <answer></s>"
//   chatml (Qwen2.5-VL; chatml_template.h, which this class runs for it):
//     prompt: "<|im_start|>system\n<system><|im_end|>\n<|im_start|>user\n"
//             "<|vision_start|><|image_pad|>...<|vision_end|><prompt><|im_end|>\n"
//             "<|im_start|>assistant\n"
//     answer: "<answer><|im_end|>"
//   auto (the default): chatml when the tokenizer has <|im_start|>, else vicuna_v1.
//
// Where each detail of vicuna_v1 comes from (LLaVA 1.2.2, as the authors trained):
//   <system>  conv_vicuna_v1.system: "A chat between a curious user and an artificial
//             intelligence assistant. The assistant gives helpful, detailed, and polite answers to
//             the user's questions." (kVicunaSystemPrompt; tokenizer.system_prompt replaces it).
//             Not the "curious human" text of llava_v1 / vicuna_v0.
//   " USER: " sep_style TWO: system + sep (" ") + role "USER" + ": " + message + sep (" ").
//   <image>\n LLaVA's training data puts DEFAULT_IMAGE_TOKEN + "\n" before the question
//             (mm_use_im_start_end false for LLaVA-1.5); a prompt that already holds the
//             placeholder keeps it where it is.
//   " ASSISTANT:" the open assistant turn: role + ":" with no trailing space (get_prompt with an
//             empty message), which is what LLaVA feeds at inference.
//   " <answer></s>" in training the turn is "ASSISTANT: " + answer + sep2 ("</s>"); preprocess_v1
//             masks "... ASSISTANT: " minus its trailing "▁", so the loss covers the answer's own
//             first piece ("▁[" ...) through EOS. The space is SentencePiece's dummy prefix here.
//   BOS       tokenizer_image_token keeps the BOS of the first chunk only (tokenizer.add_bos).
//
// The prompt ids start with BOS (tokenizer.add_bos); the answer ids end with EOS. Tokenizing the
// whole conversation as one string gives exactly prompt_ids + answer_ids, in both tokenizer modes
// (legacy or not); the fixture (tools/make_tokenizer_fixture.py) checks this, and the prompt and
// answer mask, against LLaVA's own conv_templates, tokenizer_image_token and preprocess_v1.
//
// Image tokens: the placeholder (tokenizer.image_token, `<image>`) becomes `image_tokens` copies
// of its id, as transformers' LlavaProcessor expands it (576 for LLaVA-1.5-336). The model puts
// one image feature at each copy. image_tokens = 1 keeps one placeholder for a model that expands
// it itself.
//
//   perpo::ChatTemplate chat(tokenizer, config.tokenizer);
//   std::vector<int> prompt_ids = chat.encode_prompt(record.prompt, /*has_image=*/true, 576);
//   std::vector<int> answer_ids = chat.encode_answer("[0.61, 0.1, 0.77, 0.54]");
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/tokenizer/text_tokenizer.h"

namespace perpo {

/// LLaVA-1.5's system prompt (conv_vicuna_v1), the default of tokenizer.system_prompt.
inline constexpr std::string_view kVicunaSystemPrompt =
    "A chat between a curious user and an artificial intelligence assistant. The assistant "
    "gives helpful, detailed, and polite answers to the user's questions.";

/// One prompt + answer as ids, and which of them carry loss.
struct ChatTokens {
  std::vector<int> ids;                   // prompt ids then answer ids
  std::vector<std::uint8_t> answer_mask;  // 1 on answer tokens (incl. EOS), 0 on the prompt
  int prompt_length = 0;                  // ids[0, prompt_length) is the prompt

  /// `prompt` then `answer`, the answer's positions marked (every template's encode).
  static ChatTokens join(std::vector<int> prompt, const std::vector<int>& answer);
};

class ChatMlTemplate;

class ChatTemplate {
 public:
  /// Throws perpo::Error (input) for an unknown template or an image token the tokenizer lacks.
  /// Keeps a reference to `tokenizer`, which must outlive this object.
  ChatTemplate(const TextTokenizer& tokenizer, const TokenizerConfig& config);

  /// The prompt text before tokenizing (the image placeholder appears once).
  std::string prompt_text(std::string_view user_prompt, bool has_image) const;

  /// Prompt ids: BOS (if add_bos), the template, each image placeholder repeated `image_tokens`
  /// times. Ends where the answer begins ("... ASSISTANT:" for vicuna_v1).
  std::vector<int> encode_prompt(std::string_view user_prompt, bool has_image,
                                 int image_tokens = 1) const;

  /// Answer ids: the answer text (with its leading space) and EOS. When `max_tokens` > 0 and the
  /// ids are more, the first `max_tokens` are kept (no EOS then) and `*truncated` is set.
  std::vector<int> encode_answer(std::string_view answer, int max_tokens = 0,
                                 bool* truncated = nullptr) const;

  /// encode_prompt + encode_answer with the mask that picks the answer.
  ChatTokens encode(std::string_view user_prompt, std::string_view answer, bool has_image,
                    int image_tokens = 1) const;

  /// The system prompt in use (vicuna_v1: tokenizer.system_prompt or kVicunaSystemPrompt; plain:
  /// empty).
  const std::string& system_prompt() const { return system_prompt_; }
  int image_token_id() const { return image_token_id_; }
  /// The image placeholder's text (tokenizer.image_token, e.g. "<image>").
  const std::string& image_token() const { return config_.image_token; }
  const TextTokenizer& tokenizer() const { return tokenizer_; }
  /// The template in use: vicuna_v1 | plain | chatml (auto resolved).
  const std::string& name() const { return config_.chat_template; }

 private:
  const TextTokenizer& tokenizer_;
  TokenizerConfig config_;
  std::shared_ptr<const ChatMlTemplate> chatml_;  // set for chatml
  std::string system_prompt_;
  int image_token_id_ = -1;
};

}  // namespace perpo
