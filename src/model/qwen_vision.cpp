#include "perpo/model/qwen_vision.h"

#include <torch/torch.h>

#include <cmath>

#include "perpo/core/error.h"
#include "perpo/model/activations.h"
#include "perpo/model/recompute.h"

namespace perpo {
namespace {

constexpr double kNormEps = 1e-6;  // every RMSNorm of the tower (hard-coded in transformers)

/// apply_rotary_pos_emb_vision: x (S, H, D) rotated in fp32 by cos/sin (S, D), cast back.
torch::Tensor rotate_vision(const torch::Tensor& x, const torch::Tensor& cos,
                            const torch::Tensor& sin) {
  return apply_rotary(x.to(torch::kFloat), cos.unsqueeze(-2), sin.unsqueeze(-2))
      .to(x.scalar_type());
}

}  // namespace

QwenPatchEmbedImpl::QwenPatchEmbedImpl(const QwenVisionConfig& config) {
  const std::vector<std::int64_t> kernel = {config.temporal_patch_size, config.patch_size,
                                            config.patch_size};
  proj = register_module(
      "proj", torch::nn::Conv3d(torch::nn::Conv3dOptions(config.in_channels, config.hidden_size,
                                                         torch::IntArrayRef(kernel))
                                    .stride(torch::IntArrayRef(kernel))
                                    .bias(false)));
}

torch::Tensor QwenPatchEmbedImpl::forward(const torch::Tensor& pixel_values) {
  const torch::Tensor& weight = proj->weight;  // (C, in, t, patch, patch)
  // The kernel covers the whole patch with stride = kernel: each output is one dot product of the
  // row's P values with the kernel flattened in the same (channel, frame, y, x) order.
  return pixel_values.to(weight.scalar_type()).matmul(weight.flatten(1).t());  // (S, C)
}

QwenVisionAttentionImpl::QwenVisionAttentionImpl(const QwenVisionConfig& config)
    : heads(config.num_heads), head_dim(config.head_dim()) {
  const auto C = config.hidden_size;
  qkv = register_module("qkv", LoraLinear(C, 3 * C, true));
  proj = register_module("proj", LoraLinear(C, C, true));
}

torch::Tensor QwenVisionAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                               const torch::Tensor& sin,
                                               const AttentionSegments& segments) {
  const auto S = x.size(0);
  auto qkv_heads = qkv(x).view({S, 3, heads, head_dim}).unbind(1);  // 3 x (S, H, D)
  torch::Tensor q = rotate_vision(qkv_heads[0], cos, sin);
  torch::Tensor k = rotate_vision(qkv_heads[1], cos, sin);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  torch::Tensor out = segment_attention(q, k, qkv_heads[2], segments, scale);  // (S, H, D)
  return proj(out.reshape({S, heads * head_dim}));                             // (S, C)
}

QwenVisionMlpImpl::QwenVisionMlpImpl(const QwenVisionConfig& config)
    : activation(config.hidden_act) {
  check_activation(activation, "vision_config.hidden_act");
  const auto C = config.hidden_size, F = config.intermediate_size;
  gate_proj = register_module("gate_proj", LoraLinear(C, F, true));
  up_proj = register_module("up_proj", LoraLinear(C, F, true));
  down_proj = register_module("down_proj", LoraLinear(F, C, true));
}

torch::Tensor QwenVisionMlpImpl::forward(const torch::Tensor& x) {
  return down_proj(apply_activation(activation, gate_proj(x)) * up_proj(x));
}

QwenVisionBlockImpl::QwenVisionBlockImpl(const QwenVisionConfig& config) {
  norm1 = register_module("norm1", RmsNorm(config.hidden_size, kNormEps));
  norm2 = register_module("norm2", RmsNorm(config.hidden_size, kNormEps));
  attn = register_module("attn", QwenVisionAttention(config));
  mlp = register_module("mlp", QwenVisionMlp(config));
}

torch::Tensor QwenVisionBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                           const torch::Tensor& sin,
                                           const AttentionSegments& segments) {
  torch::Tensor h = x + attn(norm1(x), cos, sin, segments);  // (S, C)
  return h + mlp(norm2(h));
}

QwenMergerMlpImpl::QwenMergerMlpImpl(std::int64_t in_features, std::int64_t out_features) {
  fc_in = register_module("0", LoraLinear(in_features, in_features, true));
  fc_out = register_module("2", LoraLinear(in_features, out_features, true));
}

torch::Tensor QwenMergerMlpImpl::forward(const torch::Tensor& x) {
  return fc_out(apply_activation("gelu", fc_in(x)));
}

QwenPatchMergerImpl::QwenPatchMergerImpl(const QwenVisionConfig& config)
    : merged_width(static_cast<std::int64_t>(config.hidden_size) * config.merge_unit()) {
  ln_q = register_module("ln_q", RmsNorm(config.hidden_size, kNormEps));
  mlp = register_module("mlp", QwenMergerMlp(merged_width, config.out_hidden_size));
}

torch::Tensor QwenPatchMergerImpl::forward(const torch::Tensor& x) {
  return mlp(ln_q(x).view({-1, merged_width}));  // (S, C) -> (M, C*merge^2) -> (M, out)
}

Qwen2_5VisionTransformerImpl::Qwen2_5VisionTransformerImpl(const QwenVisionConfig& config_)
    : config(config_) {
  PERPO_CHECK_INPUT(config.hidden_size % config.num_heads == 0 && config.head_dim() % 4 == 0,
                    "vision_config: num_heads ", config.num_heads, " must divide hidden_size ",
                    config.hidden_size, " into heads of a multiple of 4 values");
  PERPO_CHECK_INPUT(config.merged_window() >= 1, "vision_config: window_size ", config.window_size,
                    " is smaller than spatial_merge_size * patch_size");
  patch_embed = register_module("patch_embed", QwenPatchEmbed(config));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < config.depth; ++i) {
    typed_blocks.push_back(QwenVisionBlock(config));
    blocks->push_back(typed_blocks.back());
  }
  merger = register_module("merger", QwenPatchMerger(config));
}

torch::Tensor Qwen2_5VisionTransformerImpl::forward(const torch::Tensor& pixel_values,
                                                    const torch::Tensor& grid_thw) {
  const std::vector<VisionGrid> grids = read_grid_thw(grid_thw, config);
  std::int64_t S = 0;
  for (const VisionGrid& grid : grids) S += grid.patches();
  PERPO_CHECK_INPUT(pixel_values.dim() == 2 && pixel_values.size(0) == S &&
                        pixel_values.size(1) == config.patch_values(),
                    "pixel_values must be (", S, ", ", config.patch_values(),
                    ") for grid_thw's patches, got ", pixel_values.sizes());
  const torch::Device device = pixel_values.device();
  const std::int64_t unit = config.merge_unit(), M = S / unit;

  // Tokens and their rotary angles in window order: merged tokens as units of merge^2 patches.
  const WindowLayout layout = window_layout(grids, config);
  torch::Tensor window_index = torch::tensor(layout.window_index, torch::kLong).to(device);  // (M)
  auto to_window_order = [&](const torch::Tensor& rows) {  // (S, X) -> (S, X)
    return rows.view({M, unit, -1}).index_select(0, window_index).view({S, -1});
  };
  torch::Tensor hidden = to_window_order(patch_embed(pixel_values));                    // (S, C)
  torch::Tensor angles = to_window_order(vision_rotary_angles(grids, config, device));  // (S, D/2)
  torch::Tensor emb = torch::cat({angles, angles}, -1);                                 // (S, D)
  const torch::Tensor cos = emb.cos(), sin = emb.sin();  // fp32, as transformers keeps them

  const AttentionSegments windows = make_segments(layout.window_patches, device);
  const AttentionSegments frames = make_segments(frame_patches(grids), device);
  const bool recompute = gradient_checkpointing && is_training() && torch::GradMode::is_enabled();
  for (int i = 0; i < config.depth; ++i) {
    QwenVisionBlockImpl* block = typed_blocks[i].get();
    const AttentionSegments& segments = config.full_attention(i) ? frames : windows;
    if (recompute) {
      auto fn = [block, cos, sin, segments](const std::vector<torch::Tensor>& in) {
        return std::vector<torch::Tensor>{block->forward(in[0], cos, sin, segments)};
      };
      hidden = recompute_in_backward(fn, {hidden}, block->parameters())[0];
    } else {
      hidden = block->forward(hidden, cos, sin, segments);
    }
  }

  torch::Tensor merged = merger(hidden);                          // (M, out) in window order
  std::vector<std::int64_t> restore(layout.window_index.size());  // argsort(window_index)
  for (std::size_t place = 0; place < restore.size(); ++place) {
    restore[layout.window_index[place]] = static_cast<std::int64_t>(place);
  }
  return merged.index_select(0, torch::tensor(restore, torch::kLong).to(device));  // (M, out)
}

}  // namespace perpo
