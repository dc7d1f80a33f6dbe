#include "perpo/model/qwen2_5_vl.h"

#include <torch/torch.h>

#include "perpo/core/error.h"
#include "perpo/model/model_size.h"
#include "perpo/model/qwen_checkpoint.h"

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
  image_options.patch_size = config.vision.patch_size;
  image_options.merge_size = config.vision.spatial_merge_size;
  image_options.temporal_patch_size = config.vision.temporal_patch_size;
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

namespace {
/// 1-D text positions (B or 1, T) -> the three equal rows (3, B, T) of the multimodal rotary.
torch::Tensor text_positions(const torch::Tensor& positions, std::int64_t batch) {
  PERPO_CHECK(positions.dim() == 2, "text positions must be (B, T), got ", positions.sizes());
  return positions.expand({batch, positions.size(1)}).unsqueeze(0).expand({3, -1, -1});
}
}  // namespace

PromptRun Qwen2_5VLModelImpl::run_prompts(const torch::Tensor& ids,
                                          const torch::Tensor& attention_mask,
                                          const ModelImage& images) {
  const torch::Tensor grid = images.defined() ? images.grid_thw : torch::Tensor();
  PERPO_CHECK(!images.defined() || grid.defined(), "Qwen2.5-VL images need their image_grid_thw");
  RopeIndex index = qwen_rope_index(ids, grid, attention_mask, config_);
  torch::Tensor embeds = embed(ids, images.pixel_values, grid);  // (B, P, C)
  DecoderOutput out = language_model->forward(embeds, index.positions, attention_mask);
  PromptRun run;
  run.hidden = std::move(out.hidden);
  run.present = std::move(out.present);
  // rope_deltas count from the padded length T; perpo's offsets from each row's real length L
  // (vlm.h): the next position max + 1 = T + delta = L + offset.
  const std::int64_t T = ids.size(1);
  torch::Tensor real = attention_mask.defined()
                           ? attention_mask.to(torch::kInt64).sum(1)
                           : torch::full({ids.size(0)}, T, ids.options().dtype(torch::kInt64));
  torch::Tensor offsets = (index.deltas.to(torch::kInt64) + T - real.to(index.deltas.device()))
                              .to(torch::kCPU)
                              .contiguous();  // (B)
  run.position_offsets.assign(offsets.data_ptr<std::int64_t>(),
                              offsets.data_ptr<std::int64_t>() + offsets.numel());
  return run;
}

DecoderOutput Qwen2_5VLModelImpl::run_text(const torch::Tensor& embeds,
                                           const torch::Tensor& positions,
                                           const torch::Tensor& key_mask, const KVCache* past) {
  return language_model->forward(embeds, text_positions(positions, embeds.size(0)), key_mask, past);
}

torch::Tensor Qwen2_5VLModelImpl::run_text_with(const torch::Tensor& embeds,
                                                const torch::Tensor& positions,
                                                const AttentionCore& core) {
  return language_model->forward_with(embeds, text_positions(positions, embeds.size(0)), core);
}

ModelImage Qwen2_5VLModelImpl::join_images(const std::vector<ModelImage>& images) const {
  std::vector<torch::Tensor> pixels, grids;
  for (const ModelImage& image : images) {
    if (!image.defined()) continue;
    PERPO_CHECK(image.pixel_values.dim() == 2 && image.grid_thw.defined() &&
                    image.grid_thw.dim() == 2 && image.grid_thw.size(1) == 3,
                "a Qwen2.5-VL image must be patches (S, C*T*P*P) with grid_thw (I, 3), got ",
                image.pixel_values.sizes());
    pixels.push_back(image.pixel_values);
    grids.push_back(image.grid_thw);
  }
  if (pixels.empty()) return {};
  return ModelImage(torch::cat(pixels), torch::cat(grids));  // (sum S, 1176), (I, 3)
}

ImageDims Qwen2_5VLModelImpl::box_frame(const std::filesystem::path& image) const {
  const ImageDims dims = read_image_dims(image);
  const ImageSize size =
      smart_resize(dims.height, dims.width, image_options.patch_size * image_options.merge_size,
                   image_options.min_pixels, image_options.max_pixels);
  return {size.width, size.height};
}

int Qwen2_5VLModelImpl::image_tokens(const std::filesystem::path& image) const {
  const ImageDims size = box_frame(image);  // the smart_resize size
  const int patches =
      (size.height / image_options.patch_size) * (size.width / image_options.patch_size);
  return patches / (image_options.merge_size * image_options.merge_size);
}

ModelImage Qwen2_5VLModelImpl::prepare_image(const RgbImage& image,
                                             const ImageConfig& /*config*/) const {
  QwenVlPixels pixels = preprocess_qwen_vl_image(image, image_options);
  torch::Tensor values =
      torch::from_blob(pixels.data.data(), {pixels.rows, pixels.cols}, torch::kFloat32).clone();
  torch::Tensor grid = torch::tensor(
      {static_cast<std::int64_t>(pixels.grid_thw[0]), static_cast<std::int64_t>(pixels.grid_thw[1]),
       static_cast<std::int64_t>(pixels.grid_thw[2])},
      torch::kInt64);
  return ModelImage(values, grid.unsqueeze(0));  // (S, 1176), (1, 3)
}

void Qwen2_5VLModelImpl::export_hf(const std::filesystem::path& out_dir,
                                   const ExportOptions& options) {
  export_qwen2_5_vl(*this, out_dir, options);
}

void Qwen2_5VLModelImpl::check_image_config(const ImageConfig& image) const {
  PERPO_CHECK_INPUT(image.mean.size() == 3 && image.std.size() == 3,
                    "image.mean and image.std need 3 values (RGB)");
}

}  // namespace perpo
