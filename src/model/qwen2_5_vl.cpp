#include "perpo/model/qwen2_5_vl.h"

#include <torch/torch.h>

#include "perpo/core/error.h"
#include "perpo/model/model_size.h"

namespace perpo {
namespace {

/// The decoder's TextConfig as LlamaModelImpl builds Qwen2's: q/k/v biases, no o_proj or MLP
/// bias, the plain rotary unused (the multimodal one replaces it).
TextConfig qwen2_text(const Qwen2_5VLConfig& config) {
  TextConfig text = config.text;
  text.qkv_bias = true;
  text.attention_bias = false;
  text.mlp_bias = false;
  text.rope_scaling_type = "";
  return text;
}

}  // namespace

Qwen2_5TextModelImpl::Qwen2_5TextModelImpl(const Qwen2_5VLConfig& config)
    : LlamaModelImpl(qwen2_text(config)), rotary(config.text, config.mrope_section) {}

DecoderOutput Qwen2_5TextModelImpl::forward(const torch::Tensor& embeds,
                                            const torch::Tensor& positions,
                                            const torch::Tensor& key_mask, const KVCache* past) {
  PERPO_CHECK(embeds.dim() == 3, "decoder input embeddings must be (B, T, C), got ",
              embeds.sizes());
  PERPO_CHECK(positions.dim() == 3 && positions.size(0) == 3 &&
                  positions.size(1) == embeds.size(0) && positions.size(2) == embeds.size(1),
              "decoder positions must be (3, ", embeds.size(0), ", ", embeds.size(1), "), got ",
              positions.sizes());
  auto [cos, sin] = rotary.cos_sin(positions, embeds.scalar_type());
  return forward_rotated(embeds, cos, sin, key_mask, past);
}

torch::Tensor Qwen2_5TextModelImpl::forward_with(const torch::Tensor& embeds,
                                                 const torch::Tensor& positions,
                                                 const AttentionCore& core) {
  PERPO_CHECK(embeds.dim() == 3 && positions.dim() == 3 && positions.size(0) == 3 &&
                  positions.size(1) == embeds.size(0) && positions.size(2) == embeds.size(1),
              "decoder positions must be (3, B, T) for embeddings (B, T, C), got ",
              positions.sizes(), " and ", embeds.sizes());
  auto [cos, sin] = rotary.cos_sin(positions, embeds.scalar_type());
  return forward_with_rotated(embeds, cos, sin, core);
}

Qwen2_5VLModelImpl::Qwen2_5VLModelImpl(const Qwen2_5VLConfig& config) : config_(config) {
  check_model_fits_memory(config);  // before the first tensor: absurd sizes fail here
  PERPO_CHECK_INPUT(config.vision.out_hidden_size == config.text.hidden_size,
                    "vision_config.out_hidden_size ", config.vision.out_hidden_size,
                    " must equal the decoder's hidden_size ", config.text.hidden_size);
  visual = register_module("visual", Qwen2_5VisionTransformer(config.vision));
  language_model = register_module("language_model", Qwen2_5TextModel(config));
  if (!config.tie_word_embeddings) {
    lm_head = register_module(
        "lm_head", LoraLinear(config.text.hidden_size, config.text.vocab_size, /*bias=*/false));
  }
}

torch::Tensor Qwen2_5VLModelImpl::image_features(const torch::Tensor& pixel_values,
                                                 const torch::Tensor& grid_thw) {
  return visual(pixel_values, grid_thw);  // (M, C)
}

torch::Tensor Qwen2_5VLModelImpl::embed(const torch::Tensor& input_ids,
                                        const torch::Tensor& pixel_values,
                                        const torch::Tensor& grid_thw) {
  PERPO_CHECK_INPUT(input_ids.dim() == 2, "input_ids must be (B, T), got ", input_ids.sizes());
  torch::Tensor embeds = language_model->embed_tokens(input_ids);  // (B, T, C)
  torch::Tensor is_image = input_ids.eq(config_.image_token_id);   // (B, T)
  const std::int64_t image_tokens = is_image.sum().item<std::int64_t>();
  if (!pixel_values.defined()) {
    PERPO_CHECK_INPUT(image_tokens == 0, "input_ids hold ", image_tokens,
                      " image tokens but no pixel_values were given");
    return embeds;
  }
  torch::Tensor features = image_features(pixel_values, grid_thw);  // (M, C)
  PERPO_CHECK_INPUT(features.size(0) == image_tokens,
                    "Image features and image tokens do not match: input_ids hold ", image_tokens,
                    " image tokens, image_grid_thw gives ", features.size(0), " merged tokens");
  // As transformers' masked_scatter: the i-th image token (row-major over the batch) takes row i.
  return embeds.masked_scatter(is_image.unsqueeze(-1).expand_as(embeds),
                               features.to(embeds.scalar_type()));
}

torch::Tensor Qwen2_5VLModelImpl::lm_logits(const torch::Tensor& hidden) {
  if (lm_head) return lm_head(hidden);
  return torch::matmul(hidden, language_model->embed_tokens->weight.t());  // tied
}

Qwen2_5VLOutput Qwen2_5VLModelImpl::forward_embeds(const torch::Tensor& embeds,
                                                   const torch::Tensor& positions,
                                                   const torch::Tensor& key_mask,
                                                   const KVCache* past) {
  DecoderOutput decoded = language_model->forward(embeds, positions, key_mask, past);
  Qwen2_5VLOutput out;
  out.logits = lm_logits(decoded.hidden);  // (B, T, V)
  out.present = std::move(decoded.present);
  out.positions = positions;
  return out;
}

Qwen2_5VLOutput Qwen2_5VLModelImpl::forward(const torch::Tensor& input_ids,
                                            const torch::Tensor& pixel_values,
                                            const torch::Tensor& grid_thw,
                                            const torch::Tensor& attention_mask) {
  RopeIndex index = qwen_rope_index(input_ids, pixel_values.defined() ? grid_thw : torch::Tensor(),
                                    attention_mask, config_);
  torch::Tensor embeds = embed(input_ids, pixel_values, grid_thw);
  Qwen2_5VLOutput out = forward_embeds(embeds, index.positions, attention_mask);
  out.rope_deltas = index.deltas;
  return out;
}

Qwen2_5VLOutput Qwen2_5VLModelImpl::decode(const torch::Tensor& input_ids,
                                           const torch::Tensor& rope_deltas, const KVCache& past,
                                           const torch::Tensor& key_mask) {
  PERPO_CHECK_INPUT(input_ids.dim() == 2, "input_ids must be (B, T), got ", input_ids.sizes());
  PERPO_CHECK(rope_deltas.dim() == 1 && rope_deltas.size(0) == input_ids.size(0),
              "rope_deltas must be (", input_ids.size(0), "), got ", rope_deltas.sizes());
  torch::Tensor positions =
      qwen_continuation_positions(past.length(), input_ids.size(1), rope_deltas);
  Qwen2_5VLOutput out =
      forward_embeds(language_model->embed_tokens(input_ids), positions, key_mask, &past);
  out.rope_deltas = rope_deltas;
  return out;
}

}  // namespace perpo
