#include "perpo/model/llava.h"

#include <torch/torch.h>

#include "perpo/batch/collate.h"
#include "perpo/core/error.h"
#include "perpo/model/activations.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/model_size.h"

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

PromptRun LlavaModelImpl::run_prompts(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                                      const ModelImage& images) {
  torch::Tensor embeds = embed(ids, images.pixel_values);  // (B, P, C)
  torch::Tensor positions =
      torch::arange(ids.size(1), ids.options().dtype(torch::kInt64)).unsqueeze(0);  // (1, P)
  DecoderOutput out = language_model(embeds, positions, attention_mask);
  PromptRun run;
  run.hidden = std::move(out.hidden);
  run.present = std::move(out.present);
  run.position_offsets.assign(static_cast<std::size_t>(ids.size(0)), 0);
  return run;
}

DecoderOutput LlavaModelImpl::run_text(const torch::Tensor& embeds, const torch::Tensor& positions,
                                       const torch::Tensor& key_mask, const KVCache* past) {
  return language_model(embeds, positions, key_mask, past);
}

torch::Tensor LlavaModelImpl::run_text_with(const torch::Tensor& embeds,
                                            const torch::Tensor& positions,
                                            const AttentionCore& core) {
  return language_model->forward_with(embeds, positions, core);
}

ModelImage LlavaModelImpl::join_images(const std::vector<ModelImage>& images) const {
  std::vector<torch::Tensor> pixels;
  for (const ModelImage& image : images) {
    if (!image.defined()) continue;
    PERPO_CHECK(image.pixel_values.dim() == 3, "a LLaVA image must be (3, H, W), got ",
                image.pixel_values.sizes());
    pixels.push_back(image.pixel_values);
  }
  if (pixels.empty()) return {};
  return ModelImage(torch::stack(pixels));  // (I, 3, H, W)
}

int LlavaModelImpl::image_tokens(const std::filesystem::path& /*image*/) const {
  return static_cast<int>(config_.image_tokens());  // every image: one feature per patch
}

ModelImage LlavaModelImpl::prepare_image(const RgbImage& image, const ImageConfig& config) const {
  return ModelImage(pixels_to_tensor(preprocess_image(image, config)));  // (3, H, W)
}

void LlavaModelImpl::export_hf(const std::filesystem::path& out_dir, const ExportOptions& options) {
  export_checkpoint(*this, config_, out_dir, options);
}

void LlavaModelImpl::check_image_config(const ImageConfig& image) const {
  if (image.size != config_.vision.image_size) {
    throw input_error("image.size is ", image.size, " but the model's vision tower takes ",
                      config_.vision.image_size, "-pixel images")
        .hint("set image.size=" + std::to_string(config_.vision.image_size));
  }
}

}  // namespace perpo
