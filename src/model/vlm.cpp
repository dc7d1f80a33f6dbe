// The algorithms every model family shares (vlm.h): prefix sharing, answer log-probs, the head.
#include "perpo/model/vlm.h"

#include <torch/torch.h>

#include "perpo/core/error.h"
#include "perpo/model/token_logps.h"

namespace perpo {

namespace {
void check_answers(const torch::Tensor& answer_ids, const torch::Tensor& answer_mask) {
  PERPO_CHECK(answer_ids.dim() == 2 && answer_ids.size(1) > 0,
              "answer ids must be (N, T) with T > 0, got ", answer_ids.sizes());
  PERPO_CHECK(answer_mask.sizes() == answer_ids.sizes(), "answer mask ", answer_mask.sizes(),
              " must have the shape of the answer ids ", answer_ids.sizes());
  // Right padding: each row is ones then zeros. Positions continue from the prefix and padding is
  // only masked as keys, so a left-padded or holed row would give its tokens wrong positions.
  const torch::Tensor& mask = answer_mask;
  const auto T = mask.size(1);
  torch::Tensor binary = ((mask == 0) | (mask == 1)).all();                   // ()
  torch::Tensor rises = mask.narrow(1, 1, T - 1) > mask.narrow(1, 0, T - 1);  // (N, T-1)
  if (!mask.is_cpu()) {
    // No host round-trip per training step on an accelerator: asserted on the device (the error
    // surfaces at the next synchronisation); collation builds right-padded masks.
    at::_assert_async(binary & rises.any().logical_not());
    return;
  }
  PERPO_CHECK(binary.item<bool>(), "answer mask values must be 0 or 1");
  torch::Tensor bad_rows = rises.any(1).nonzero();
  if (bad_rows.numel() > 0) {
    throw runtime_error("answer mask row ", bad_rows[0][0].item<std::int64_t>(),
                        " is not right-padded (a real token follows padding)")
        .hint("answers must be padded on the right: ones, then zeros");
  }
}
}  // namespace

ModelImage ModelImage::to(const torch::TensorOptions& options) const {
  if (!defined()) return {};
  return ModelImage(pixel_values.to(options),
                    grid_thw.defined() ? grid_thw.to(options.device()) : torch::Tensor());
}

std::int64_t VisionLanguageModel::vocab_size() { return decoder().embed_tokens->weight.size(0); }

torch::TensorOptions VisionLanguageModel::weight_options() {
  return decoder().embed_tokens->weight.options();
}

torch::Tensor VisionLanguageModel::embed_text(const torch::Tensor& ids) {
  return decoder().embed_tokens(ids);
}

torch::Tensor VisionLanguageModel::lm_logits(const torch::Tensor& hidden) {
  if (LoraLinearImpl* layer = head()) return layer->forward(hidden);
  return torch::nn::functional::linear(hidden, decoder().embed_tokens->weight);  // tied
}

PrefixState VisionLanguageModel::encode_prefix(const torch::Tensor& prompt_ids,
                                               const ModelImage& image) {
  PERPO_CHECK(prompt_ids.dim() == 2 && prompt_ids.size(0) == 1 && prompt_ids.size(1) > 0,
              "a shared prefix must be (1, P) with P > 0, got ", prompt_ids.sizes());
  const auto P = prompt_ids.size(1);
  PromptRun run = run_prompts(prompt_ids, torch::Tensor(), image);
  PrefixState prefix;
  prefix.kv = std::move(run.present);
  prefix.last_hidden = run.hidden.select(1, P - 1);  // (1, C)
  prefix.length = P;
  prefix.position_offset = run.position_offsets.at(0);
  return prefix;
}

torch::Tensor VisionLanguageModel::answer_logps(const PrefixState& prefix,
                                                const torch::Tensor& answer_ids,
                                                const torch::Tensor& answer_mask,
                                                std::int64_t chunk) {
  check_answers(answer_ids, answer_mask);
  PERPO_CHECK(prefix.length > 0 && prefix.kv.batch() == 1,
              "answer_logps needs a prefix from encode_prefix");
  const auto N = answer_ids.size(0), T = answer_ids.size(1), P = prefix.length;
  const auto start = P + prefix.position_offset;
  torch::Tensor real = answer_mask.to(torch::kBool);                      // (N, T)
  torch::Tensor targets = answer_ids.masked_fill(real.logical_not(), 0);  // (N, T)
  torch::Tensor embeds = embed_text(targets);                             // (N, T, C)
  torch::Tensor positions =
      torch::arange(start, start + T, answer_ids.options().dtype(torch::kInt64))
          .unsqueeze(0);                                                                // (1, T)
  torch::Tensor key_mask = torch::cat({torch::ones({N, P}, real.options()), real}, 1);  // (N, P+T)
  DecoderOutput out = run_text(embeds, positions, key_mask, &prefix.kv);                // (N, T, C)
  // The last prompt token predicts answer token 0; answer token t predicts token t + 1.
  torch::Tensor first = prefix.last_hidden.unsqueeze(1).expand({N, 1, -1});           // (N, 1, C)
  torch::Tensor predictors = torch::cat({first, out.hidden.narrow(1, 0, T - 1)}, 1);  // (N, T, C)
  return chunked_token_logps(predictors, targets, real, chunk);
}

torch::Tensor VisionLanguageModel::sequence_answer_logps(
    const torch::Tensor& ids, const ModelImage& images, const torch::Tensor& attention_mask,
    const torch::Tensor& answer_start, const torch::Tensor& answer_mask, std::int64_t chunk) {
  PERPO_CHECK(ids.dim() == 2 && attention_mask.sizes() == ids.sizes(),
              "sequence ids (B, S) and attention mask must match, got ", ids.sizes(), " and ",
              attention_mask.sizes());
  const auto B = ids.size(0), S = ids.size(1);
  PERPO_CHECK(answer_mask.dim() == 2 && answer_mask.size(0) == B && answer_mask.size(1) > 0 &&
                  answer_start.dim() == 1 && answer_start.size(0) == B,
              "answer_start (B) and answer_mask (B, A) must match ", B, " sequences, got ",
              answer_start.sizes(), " and ", answer_mask.sizes());
  // The checks read answer_start and answer_mask: host tensors keep them free of device syncs.
  check_answers(answer_mask, answer_mask);  // right padding
  PERPO_CHECK(answer_start.min().item<std::int64_t>() >= 1,
              "an answer must follow at least one token");
  const auto A = answer_mask.size(1);
  const torch::Tensor start = answer_start.to(ids.device(), torch::kInt64);    // (B)
  torch::Tensor real = answer_mask.to(ids.device(), torch::kBool);             // (B, A)
  torch::Tensor offsets = torch::arange(A, start.options()).unsqueeze(0);      // (1, A)
  torch::Tensor target_pos = (start.unsqueeze(1) + offsets).clamp_max(S - 1);  // (B, A)
  PromptRun run = run_prompts(ids, attention_mask, images);
  const auto C = run.hidden.size(2);
  torch::Tensor predictors =
      run.hidden.gather(1, (target_pos - 1).unsqueeze(2).expand({B, A, C}));  // (B, A, C)
  torch::Tensor targets = ids.gather(1, target_pos).masked_fill(real.logical_not(), 0);  // (B, A)
  return chunked_token_logps(predictors, targets, real, chunk);
}

torch::Tensor VisionLanguageModel::lm_head_weight() {
  LoraLinearImpl* layer = head();
  if (layer == nullptr) return decoder().embed_tokens->weight;  // tied
  if (!layer->lora_enabled()) return layer->weight;
  // An adapter without dropout is its merged weight; dropout acts on the adapter's input only,
  // which a single weight cannot express (apply_lora never puts adapters on lm_head).
  PERPO_CHECK(layer->lora_dropout == 0.0 || !layer->is_training(),
              "answer log-probs cannot train an lm_head adapter with dropout");
  return layer->merged_weight();
}

torch::Tensor VisionLanguageModel::chunked_token_logps(const torch::Tensor& hidden,
                                                       const torch::Tensor& targets,
                                                       const torch::Tensor& mask,
                                                       std::int64_t chunk) {
  PERPO_CHECK(chunk > 0, "log-prob chunk must be > 0, got ", chunk);
  torch::Tensor weight = lm_head_weight();  // (V, C)
  torch::Tensor logps = token_logps_from_hidden(hidden.to(weight.scalar_type()), weight, targets,
                                                chunk * hidden.size(0));  // (N, T)
  return logps.masked_fill(mask.logical_not(), 0.0);                      // (N, T)
}

}  // namespace perpo
