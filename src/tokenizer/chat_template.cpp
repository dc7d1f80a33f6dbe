// Chat templates vicuna_v1 and plain (see chat_template.h).
#include "perpo/tokenizer/chat_template.h"

#include <algorithm>
#include <utility>

#include "perpo/core/error.h"
#include "perpo/tokenizer/chatml_template.h"

namespace perpo {

ChatTemplate::ChatTemplate(const TextTokenizer& tokenizer, const TokenizerConfig& config)
    : tokenizer_(tokenizer), config_(config) {
  if (config_.chat_template == "auto") {
    config_.chat_template = tokenizer_.added_token_id("<|im_start|>") ? "chatml" : "vicuna_v1";
  }
  if (config_.chat_template == "chatml") {
    chatml_ = std::make_shared<ChatMlTemplate>(tokenizer_, config_.system_prompt);
    config_.image_token = "<|image_pad|>";
    image_token_id_ = chatml_->image_token_id();
    system_prompt_ = chatml_->system_prompt();
    return;
  }
  if (config_.chat_template != "vicuna_v1" && config_.chat_template != "plain") {
    throw input_error("unknown chat template '", config_.chat_template, "'")
        .hint("tokenizer.chat_template must be auto, vicuna_v1, plain or chatml");
  }
  const auto image_id = tokenizer_.added_token_id(config_.image_token);
  if (!image_id) {
    throw input_error("tokenizer ", tokenizer_.model_path().string(), " has no added token '",
                      config_.image_token, "'")
        .hint("set tokenizer.image_token to the image placeholder of this tokenizer");
  }
  image_token_id_ = *image_id;
  if (config_.chat_template == "vicuna_v1") {
    system_prompt_ =
        config_.system_prompt.empty() ? std::string(kVicunaSystemPrompt) : config_.system_prompt;
  }
}

std::string ChatTemplate::prompt_text(std::string_view user_prompt, bool has_image) const {
  if (chatml_) return chatml_->prompt_text(user_prompt, has_image);
  std::string body;
  if (has_image && user_prompt.find(config_.image_token) == std::string_view::npos) {
    body = config_.image_token + "\n";
  }
  body += user_prompt;
  if (config_.chat_template == "plain") return body;
  return system_prompt_ + " USER: " + body + " ASSISTANT:";
}

std::vector<int> ChatTemplate::encode_prompt(std::string_view user_prompt, bool has_image,
                                             int image_tokens) const {
  if (chatml_) return chatml_->encode_prompt(user_prompt, has_image, image_tokens);
  PERPO_CHECK(image_tokens >= 1, "image_tokens must be >= 1, got ", image_tokens);
  const std::vector<int> ids =
      tokenizer_.encode(prompt_text(user_prompt, has_image), config_.add_bos);
  if (image_tokens == 1) return ids;
  std::vector<int> expanded;
  expanded.reserve(ids.size() + image_tokens);
  for (int id : ids) {
    if (id == image_token_id_) {
      expanded.insert(expanded.end(), image_tokens, id);
    } else {
      expanded.push_back(id);
    }
  }
  return expanded;
}

std::vector<int> ChatTemplate::encode_answer(std::string_view answer, int max_tokens,
                                             bool* truncated) const {
  if (chatml_) return chatml_->encode_answer(answer, max_tokens, truncated);
  // SentencePiece's dummy prefix supplies the space between "ASSISTANT:" and the answer.
  std::vector<int> ids = tokenizer_.encode(answer, /*add_bos=*/false, /*add_eos=*/true);
  if (truncated) *truncated = false;
  if (max_tokens > 0 && static_cast<int>(ids.size()) > max_tokens) {
    ids.resize(max_tokens);  // a cut answer has no EOS: it did not end there
    if (truncated) *truncated = true;
  }
  return ids;
}

ChatTokens ChatTokens::join(std::vector<int> prompt, const std::vector<int>& answer) {
  ChatTokens tokens;
  tokens.ids = std::move(prompt);
  tokens.prompt_length = static_cast<int>(tokens.ids.size());
  tokens.ids.insert(tokens.ids.end(), answer.begin(), answer.end());
  tokens.answer_mask.assign(tokens.ids.size(), 0);
  std::fill(tokens.answer_mask.begin() + tokens.prompt_length, tokens.answer_mask.end(), 1);
  return tokens;
}

ChatTokens ChatTemplate::encode(std::string_view user_prompt, std::string_view answer,
                                bool has_image, int image_tokens) const {
  return ChatTokens::join(encode_prompt(user_prompt, has_image, image_tokens),
                          encode_answer(answer));
}

}  // namespace perpo
