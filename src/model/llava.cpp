#include "perpo/model/llava.h"

#include <torch/torch.h>

#include "perpo/core/error.h"
#include "perpo/model/activations.h"
#include "perpo/model/model_size.h"
#include "perpo/model/token_logps.h"

namespace perpo {

MultiModalProjectorImpl::MultiModalProjectorImpl(const ModelConfig& config)
    : activation(config.projector_hidden_act) {
  check_activation(activation, "projector_hidden_act");
  const bool bias = config.multimodal_projector_bias;
  linear_1 = register_module("linear_1",
                             LoraLinear(config.vision.hidden_size, config.text.hidden_size, bias));
  linear_2 = register_module("linear_2",
                             LoraLinear(config.text.hidden_size, config.text.hidden_size, bias));
}

torch::Tensor MultiModalProjectorImpl::forward(const torch::Tensor& features) {
  return linear_2(apply_activation(activation, linear_1(features)));
}

LlavaModelImpl::LlavaModelImpl(const ModelConfig& config) : config_(config) {
  check_model_fits_memory(config);  // before the first tensor: absurd sizes fail here
  const auto& strategy = config.vision_feature_select_strategy;
  if (strategy != "default" && strategy != "full") {
    throw input_error("vision_feature_select_strategy '", strategy, "' is not supported")
        .hint("use 'default' (drop the CLS token) or 'full'");
  }
  vision_tower = register_module("vision_tower", ClipVisionTower(config.vision));
  multi_modal_projector = register_module("multi_modal_projector", MultiModalProjector(config));
  language_model = register_module("language_model", LlamaModel(config.text));
  if (!config.tie_word_embeddings) {
    lm_head = register_module("lm_head",
                              LoraLinear(config.text.hidden_size, config.text.vocab_size, false));
  }
}

torch::Tensor LlavaModelImpl::image_features(const torch::Tensor& pixel_values) {
  torch::Tensor hidden = vision_tower->vision_model->hidden_state(
      pixel_values, config_.vision_feature_layer);  // (I, 1+Np, Cv)
  if (config_.vision_feature_select_strategy == "default") {
    hidden = hidden.narrow(1, 1, hidden.size(1) - 1);  // (I, Np, Cv): CLS dropped
  }
  return multi_modal_projector(hidden);  // (I, image_tokens, C)
}

void LlavaModelImpl::check_image_positions(const torch::Tensor& is_image, std::int64_t expected,
                                           const std::string& what) const {
  torch::Tensor count = is_image.sum();  // ()
  if (is_image.is_cpu()) {
    // On the CPU reading the count costs nothing: check it with a clear message.
    const std::int64_t image_positions = count.item<std::int64_t>();
    PERPO_CHECK(image_positions == expected, "the input ids hold ", image_positions,
                " image tokens (id ", config_.image_token_index, ") but ", what);
    return;
  }
  // On an accelerator .item() would wait for the device in every forward: assert there instead
  // (the error surfaces at the next synchronisation).
  at::_assert_async(count == expected);
}

torch::Tensor LlavaModelImpl::embed(const torch::Tensor& ids, const torch::Tensor& pixel_values) {
  PERPO_CHECK(ids.dim() == 2, "input ids must be (B, S), got ", ids.sizes());
  torch::Tensor is_image = ids == config_.image_token_index;  // (B, S)
  // The image token may lie outside the vocabulary: look up id 0 there, it is overwritten below.
  torch::Tensor embeds = language_model->embed_tokens(ids.masked_fill(is_image, 0));  // (B, S, C)
  if (!pixel_values.defined()) {
    check_image_positions(is_image, 0, "no pixel values were given");
    return embeds;
  }
  torch::Tensor features = image_features(pixel_values).to(embeds.scalar_type());  // (I, Ni, C)
  check_image_positions(is_image, features.size(0) * features.size(1),
                        std::to_string(features.size(0)) + " image(s) give " +
                            std::to_string(features.size(0) * features.size(1)) + " features (" +
                            std::to_string(features.size(1)) + " per image)");
  return embeds.masked_scatter(is_image.unsqueeze(-1).expand_as(embeds), features);  // (B, S, C)
}

torch::Tensor LlavaModelImpl::lm_logits(const torch::Tensor& hidden) {
  if (lm_head) return lm_head(hidden);
  return torch::nn::functional::linear(hidden, language_model->embed_tokens->weight);
}

torch::Tensor LlavaModelImpl::forward(const torch::Tensor& ids, const torch::Tensor& pixel_values,
                                      const torch::Tensor& attention_mask,
                                      const torch::Tensor& positions) {
  torch::Tensor embeds = embed(ids, pixel_values);  // (B, S, C)
  torch::Tensor pos =
      positions.defined()
          ? positions
          : torch::arange(ids.size(1), ids.options().dtype(torch::kInt64)).unsqueeze(0);
  DecoderOutput out = language_model(embeds, pos, attention_mask);
  return lm_logits(out.hidden);  // (B, S, V)
}

PrefixState LlavaModelImpl::encode_prefix(const torch::Tensor& prompt_ids,
                                          const torch::Tensor& pixel_values) {
  PERPO_CHECK(prompt_ids.dim() == 2 && prompt_ids.size(0) == 1 && prompt_ids.size(1) > 0,
              "a shared prefix must be (1, P) with P > 0, got ", prompt_ids.sizes());
  const auto P = prompt_ids.size(1);
  torch::Tensor embeds = embed(prompt_ids, pixel_values);  // (1, P, C)
  torch::Tensor positions =
      torch::arange(P, prompt_ids.options().dtype(torch::kInt64)).unsqueeze(0);
  DecoderOutput out = language_model(embeds, positions);
  PrefixState prefix;
  prefix.kv = std::move(out.present);
  prefix.last_hidden = out.hidden.select(1, P - 1);  // (1, C)
  prefix.length = P;
  return prefix;
}

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

torch::Tensor LlavaModelImpl::answer_logps(const PrefixState& prefix,
                                           const torch::Tensor& answer_ids,
                                           const torch::Tensor& answer_mask, std::int64_t chunk) {
  check_answers(answer_ids, answer_mask);
  PERPO_CHECK(prefix.length > 0 && prefix.kv.batch() == 1,
              "answer_logps needs a prefix from encode_prefix");
  const auto N = answer_ids.size(0), T = answer_ids.size(1), P = prefix.length;
  torch::Tensor real = answer_mask.to(torch::kBool);                      // (N, T)
  torch::Tensor targets = answer_ids.masked_fill(real.logical_not(), 0);  // (N, T)
  torch::Tensor embeds = language_model->embed_tokens(targets);           // (N, T, C)
  torch::Tensor positions =
      torch::arange(P, P + T, answer_ids.options().dtype(torch::kInt64)).unsqueeze(0);  // (1, T)
  torch::Tensor key_mask = torch::cat({torch::ones({N, P}, real.options()), real}, 1);  // (N, P+T)
  DecoderOutput out = language_model(embeds, positions, key_mask, &prefix.kv);          // (N, T, C)
  // The last prompt token predicts answer token 0; answer token t predicts token t + 1.
  torch::Tensor first = prefix.last_hidden.unsqueeze(1).expand({N, 1, -1});           // (N, 1, C)
  torch::Tensor predictors = torch::cat({first, out.hidden.narrow(1, 0, T - 1)}, 1);  // (N, T, C)
  return chunked_token_logps(predictors, targets, real, chunk);
}

torch::Tensor LlavaModelImpl::sequence_answer_logps(const torch::Tensor& ids,
                                                    const torch::Tensor& pixel_values,
                                                    const torch::Tensor& attention_mask,
                                                    const torch::Tensor& answer_start,
                                                    const torch::Tensor& answer_mask,
                                                    std::int64_t chunk) {
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
  torch::Tensor positions = torch::arange(S, start.options()).unsqueeze(0);    // (1, S)
  DecoderOutput out = language_model(embed(ids, pixel_values), positions, attention_mask);
  const auto C = out.hidden.size(2);
  torch::Tensor predictors =
      out.hidden.gather(1, (target_pos - 1).unsqueeze(2).expand({B, A, C}));  // (B, A, C)
  torch::Tensor targets = ids.gather(1, target_pos).masked_fill(real.logical_not(), 0);  // (B, A)
  return chunked_token_logps(predictors, targets, real, chunk);
}

torch::Tensor LlavaModelImpl::lm_head_weight() const {
  if (!lm_head) return language_model->embed_tokens->weight;  // tied
  if (!lm_head->lora_enabled()) return lm_head->weight;
  // An adapter without dropout is its merged weight; dropout acts on the adapter's input only,
  // which a single weight cannot express (apply_lora never puts adapters on lm_head).
  PERPO_CHECK(lm_head->lora_dropout == 0.0 || !lm_head->is_training(),
              "answer log-probs cannot train an lm_head adapter with dropout");
  return lm_head->merged_weight();
}

torch::Tensor LlavaModelImpl::chunked_token_logps(const torch::Tensor& hidden,
                                                  const torch::Tensor& targets,
                                                  const torch::Tensor& mask, std::int64_t chunk) {
  PERPO_CHECK(chunk > 0, "log-prob chunk must be > 0, got ", chunk);
  torch::Tensor weight = lm_head_weight();  // (V, C)
  torch::Tensor logps = token_logps_from_hidden(hidden.to(weight.scalar_type()), weight, targets,
                                                chunk * hidden.size(0));  // (N, T)
  return logps.masked_fill(mask.logical_not(), 0.0);                      // (N, T)
}

}  // namespace perpo
