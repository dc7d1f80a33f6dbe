#include "perpo/model/llama.h"

#include <torch/torch.h>

#include <cmath>

#include "perpo/core/error.h"
#include "perpo/model/activations.h"
#include "perpo/model/attention.h"
#include "perpo/model/recompute.h"

namespace perpo {

RmsNormImpl::RmsNormImpl(std::int64_t size, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({size}));
}

namespace {

// x / rms(x) in fp32, and the pieces of it a backward needs.
struct RmsParts {
  torch::Tensor x32;     // x in fp32
  torch::Tensor r;       // (..., 1) 1 / sqrt(mean(x^2) + eps)
  torch::Tensor normed;  // x32 * r, cast back to x's dtype
};

RmsParts rms_parts(const torch::Tensor& x, double eps) {
  torch::Tensor x32 = x.to(torch::kFloat);
  torch::Tensor r = torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  torch::Tensor normed = (x32 * r).to(x.scalar_type());
  return {std::move(x32), std::move(r), std::move(normed)};
}

// RMSNorm as one autograd node instead of six to eight (pow, mean, add, rsqrt, mul, mul and the
// casts). Its backward does the arithmetic autograd does through them, in the same order, and
// hands x's gradient over as autograd's nodes would: in fp32 as two parts, through the
// normalisation then through the mean of squares (x is passed twice, so the engine adds them to
// x's other gradients, e.g. a residual's, in the same order); in bf16 as their fp32 sum cast
// once, as the cast's node does. So the gradients are the same values.
struct RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& /*x_again*/, const torch::Tensor& weight,
                               double eps) {
    RmsParts parts = rms_parts(x, eps);
    ctx->save_for_backward({parts.x32, parts.r, parts.normed, weight});
    return weight * parts.normed;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &x32 = saved[0], &r = saved[1], &normed = saved[2], &weight = saved[3];
    const torch::Tensor& grad = grads[0];
    torch::Tensor grad_weight;
    if (ctx->needs_input_grad(2)) grad_weight = at::sum_to(grad * normed, weight.sizes());
    if (!ctx->needs_input_grad(0)) return {torch::Tensor(), torch::Tensor(), grad_weight, {}};
    const torch::Tensor grad_normed = (grad * weight).to(torch::kFloat);
    const torch::Tensor through_norm = grad_normed * r;                     // (..., C)
    const torch::Tensor grad_r = at::sum_to(grad_normed * x32, r.sizes());  // (..., 1)
    const torch::Tensor grad_mean = -0.5 * grad_r * r.pow(3);               // rsqrt's backward
    const torch::Tensor grad_squares = grad_mean.expand(x32.sizes()) / x32.size(-1);
    const torch::Tensor through_squares = grad_squares * (2.0 * x32);  // pow's: 2 x^1
    if (normed.scalar_type() == torch::kFloat) {
      return {through_norm, through_squares, grad_weight, {}};
    }
    return {(through_norm + through_squares).to(normed.scalar_type()),
            torch::Tensor(),
            grad_weight,
            {}};
  }
};

}  // namespace

torch::Tensor RmsNormImpl::forward(const torch::Tensor& x) {
  if (torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad()) &&
      weight.scalar_type() == x.scalar_type() && x.dim() >= 1 && weight.dim() == 1 &&
      weight.size(0) == x.size(-1) && x.is_floating_point()) {
    return RmsNormFunction::apply(x, x, weight, eps);
  }
  return weight * rms_parts(x, eps).normed;
}

RotaryEmbedding::RotaryEmbedding(const TextConfig& config) {
  const std::int64_t dim = config.effective_head_dim();
  const auto& type = config.rope_scaling_type;
  if (!(type.empty() || type == "default" || type == "linear")) {
    throw input_error("text_config.rope_scaling type '", type, "' is not supported")
        .hint(
            "perpo supports no rope_scaling, 'default' and 'linear' (config.json refuses others)");
  }
  // inv_freq[i] = 1 / theta^(2i / D), as transformers (fp32 from int64 arange)
  torch::Tensor exponents = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat) / dim;
  inv_freq_ = 1.0 / torch::pow(config.rope_theta, exponents);  // (D/2)
  if (type == "linear") inv_freq_ = inv_freq_ / config.rope_scaling_factor;
}

std::pair<torch::Tensor, torch::Tensor> RotaryEmbedding::cos_sin(const torch::Tensor& positions,
                                                                 torch::ScalarType dtype) const {
  torch::Tensor inv_freq;
  {
    std::lock_guard<std::mutex> lock(move_);
    // Once per device change (after model->to(device)), never per forward.
    if (inv_freq_.device() != positions.device()) {
      inv_freq_ = inv_freq_.to(positions.device());
    }
    inv_freq = inv_freq_;
  }
  torch::Tensor freqs = positions.to(torch::kFloat).unsqueeze(-1) * inv_freq;  // (B, T, D/2)
  torch::Tensor angles = torch::cat({freqs, freqs}, -1).unsqueeze(1);          // (B, 1, T, D)
  return {angles.cos().to(dtype), angles.sin().to(dtype)};
}

namespace {

torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const auto half = x.size(-1) / 2;
  torch::Tensor rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;  // (B, heads, T, D)
}

// The rotation as one autograd node instead of seven (narrow, narrow, neg, cat, mul, mul, add),
// for x that needs a gradient and tables that do not. Its backward is the arithmetic autograd
// does through those nodes: g * cos plus the inverse rotation of g * sin (the zero-padded halves
// autograd adds in are exact zeros), so the gradients are the same values.
struct RotaryFunction : public torch::autograd::Function<RotaryFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& cos, const torch::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    return rotate(x, cos, sin);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& grad = grads[0];
    const auto half = grad.size(-1) / 2;
    torch::Tensor grad_rotated = grad * saved[1];  // the gradient of cat(-x2, x1)
    torch::Tensor unrotated =
        torch::cat({grad_rotated.narrow(-1, half, half), -grad_rotated.narrow(-1, 0, half)}, -1);
    return {grad * saved[0] + unrotated, torch::Tensor(), torch::Tensor()};
  }
};

// A table of x's dtype that broadcasts to x's shape (the product has x's shape).
bool table_for(const torch::Tensor& table, const torch::Tensor& x) {
  if (table.requires_grad() || table.scalar_type() != x.scalar_type() || table.dim() != x.dim()) {
    return false;
  }
  for (std::int64_t d = 0; d < x.dim(); ++d) {
    if (table.size(d) != x.size(d) && table.size(d) != 1) return false;
  }
  return true;
}

}  // namespace

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos,
                           const torch::Tensor& sin) {
  if (torch::GradMode::is_enabled() && x.requires_grad() && x.size(-1) % 2 == 0 &&
      table_for(cos, x) && table_for(sin, x)) {
    return RotaryFunction::apply(x, cos, sin);
  }
  return rotate(x, cos, sin);
}

LlamaAttentionImpl::LlamaAttentionImpl(const TextConfig& config)
    : heads(config.num_attention_heads),
      kv_heads(config.num_key_value_heads),
      head_dim(config.effective_head_dim()) {
  PERPO_CHECK_INPUT(kv_heads > 0 && heads % kv_heads == 0, "text_config: num_attention_heads ",
                    heads, " is not a multiple of num_key_value_heads ", kv_heads);
  const auto C = config.hidden_size;
  const bool bias = config.attention_bias, qkv_bias = bias || config.qkv_bias;
  q_proj = register_module("q_proj", LoraLinear(C, heads * head_dim, qkv_bias));
  k_proj = register_module("k_proj", LoraLinear(C, kv_heads * head_dim, qkv_bias));
  v_proj = register_module("v_proj", LoraLinear(C, kv_heads * head_dim, qkv_bias));
  o_proj = register_module("o_proj", LoraLinear(heads * head_dim, C, bias));
}

LayerOutput LlamaAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                        const torch::Tensor& sin, const AttentionMask& mask,
                                        const torch::Tensor& past_k, const torch::Tensor& past_v) {
  return forward_with(
      x, cos, sin, 0,
      [&](std::size_t, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
          double scale) { return attend_layer(q, past_k, past_v, k, v, mask, scale); });
}

LayerOutput LlamaAttentionImpl::forward_with(const torch::Tensor& x, const torch::Tensor& cos,
                                             const torch::Tensor& sin, std::size_t layer,
                                             const AttentionCore& core) {
  const auto B = x.size(0), T = x.size(1);
  torch::Tensor q = q_proj(x).view({B, T, heads, head_dim}).transpose(1, 2);     // (B, H, T, D)
  torch::Tensor k = k_proj(x).view({B, T, kv_heads, head_dim}).transpose(1, 2);  // (B, Hkv, T, D)
  torch::Tensor v = v_proj(x).view({B, T, kv_heads, head_dim}).transpose(1, 2);  // (B, Hkv, T, D)
  q = apply_rotary(q, cos, sin);
  k = apply_rotary(k, cos, sin);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  torch::Tensor out = core(layer, q, k, v, scale);  // (B, H, T, D)
  return {o_proj(out.transpose(1, 2).reshape({B, T, heads * head_dim})), k, v};
}

LlamaMlpImpl::LlamaMlpImpl(const TextConfig& config) : activation(config.hidden_act) {
  check_activation(activation, "text_config.hidden_act");
  const auto C = config.hidden_size, M = config.intermediate_size;
  gate_proj = register_module("gate_proj", LoraLinear(C, M, config.mlp_bias));
  up_proj = register_module("up_proj", LoraLinear(C, M, config.mlp_bias));
  down_proj = register_module("down_proj", LoraLinear(M, C, config.mlp_bias));
}

torch::Tensor LlamaMlpImpl::forward(const torch::Tensor& x) {
  return down_proj(apply_activation(activation, gate_proj(x)) * up_proj(x));
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const TextConfig& config) {
  self_attn = register_module("self_attn", LlamaAttention(config));
  mlp = register_module("mlp", LlamaMlp(config));
  input_layernorm =
      register_module("input_layernorm", RmsNorm(config.hidden_size, config.rms_norm_eps));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RmsNorm(config.hidden_size, config.rms_norm_eps));
}

LayerOutput LlamaDecoderLayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& cos,
                                           const torch::Tensor& sin, const AttentionMask& mask,
                                           const torch::Tensor& past_k,
                                           const torch::Tensor& past_v) {
  return forward_with(
      hidden, cos, sin, 0,
      [&](std::size_t, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
          double scale) { return attend_layer(q, past_k, past_v, k, v, mask, scale); });
}

LayerOutput LlamaDecoderLayerImpl::forward_with(const torch::Tensor& hidden,
                                                const torch::Tensor& cos, const torch::Tensor& sin,
                                                std::size_t layer, const AttentionCore& core) {
  LayerOutput attn = self_attn->forward_with(input_layernorm(hidden), cos, sin, layer, core);
  torch::Tensor h = hidden + attn.hidden;  // (B, T, C)
  return {h + mlp(post_attention_layernorm(h)), attn.key, attn.value};
}

LlamaModelImpl::LlamaModelImpl(const TextConfig& config_) : config(config_), rotary_(config_) {
  // As transformers' LlamaModel: padding_idx = pad_token_id, so the pad row takes no gradient
  // from the lookup (a tied lm_head still updates it).
  torch::nn::EmbeddingOptions embed_options(config.vocab_size, config.hidden_size);
  if (config.pad_token_id >= 0) {
    PERPO_CHECK_INPUT(config.pad_token_id < config.vocab_size, "text_config.pad_token_id ",
                      config.pad_token_id, " is outside the vocabulary of ", config.vocab_size);
    embed_options.padding_idx(config.pad_token_id);
  }
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(embed_options));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    typed_layers.push_back(LlamaDecoderLayer(config));
    layers->push_back(typed_layers.back());
  }
  norm = register_module("norm", RmsNorm(config.hidden_size, config.rms_norm_eps));
}

DecoderOutput LlamaModelImpl::forward(const torch::Tensor& embeds, const torch::Tensor& positions,
                                      const torch::Tensor& key_mask, const KVCache* past) {
  PERPO_CHECK(embeds.dim() == 3 && embeds.size(2) == config.hidden_size,
              "decoder input embeddings must be (B, T, ", config.hidden_size, "), got ",
              embeds.sizes());
  const auto T = embeds.size(1);
  PERPO_CHECK(positions.dim() == 2 && positions.size(1) == T, "decoder positions must be (B or 1, ",
              T, "), got ", positions.sizes());
  auto [cos, sin] = rotary_.cos_sin(positions, embeds.scalar_type());
  return forward_rotated(embeds, cos, sin, key_mask, past);
}

DecoderOutput LlamaModelImpl::forward_rotated(const torch::Tensor& embeds, const torch::Tensor& cos,
                                              const torch::Tensor& sin,
                                              const torch::Tensor& key_mask, const KVCache* past) {
  PERPO_CHECK(embeds.dim() == 3 && embeds.size(2) == config.hidden_size,
              "decoder input embeddings must be (B, T, ", config.hidden_size, "), got ",
              embeds.sizes());
  const auto T = embeds.size(1);
  PERPO_CHECK(cos.dim() == 4 && cos.size(2) == T && cos.sizes() == sin.sizes(),
              "decoder rotary tables must be (B or 1, 1, ", T, ", D), got ", cos.sizes(), " and ",
              sin.sizes());
  const bool has_past = past != nullptr && !past->empty();
  if (has_past) {
    PERPO_CHECK(past->keys.size() == typed_layers.size(), "KV cache has ", past->keys.size(),
                " layers, the decoder ", typed_layers.size());
    PERPO_CHECK(past->batch() == 1 || past->batch() == embeds.size(0), "KV cache batch ",
                past->batch(), " must be 1 or the input batch ", embeds.size(0));
  }
  const std::int64_t past_len = has_past ? past->length() : 0;
  const AttentionMask mask = make_attention_mask(past_len, has_past ? past->batch() : 0,
                                                 embeds.size(0), T, key_mask, embeds.device());

  DecoderOutput out;
  torch::Tensor hidden = embeds;
  for (std::size_t i = 0; i < typed_layers.size(); ++i) {
    LlamaDecoderLayer layer = typed_layers[i];
    torch::Tensor past_k = has_past ? past->keys[i] : torch::Tensor();
    torch::Tensor past_v = has_past ? past->values[i] : torch::Tensor();
    LayerOutput result;
    if (gradient_checkpointing_ && is_training() && torch::GradMode::is_enabled()) {
      LlamaDecoderLayerImpl* layer_impl = layer.get();
      auto fn = [layer_impl, cos = cos, sin = sin, mask](const std::vector<torch::Tensor>& in) {
        LayerOutput r = layer_impl->forward(in[0], cos, sin, mask, in[1], in[2]);
        return std::vector<torch::Tensor>{r.hidden, r.key, r.value};
      };
      auto outputs = recompute_in_backward(fn, {hidden, past_k, past_v}, layer->parameters());
      result = {outputs[0], outputs[1], outputs[2]};
    } else {
      result = layer->forward(hidden, cos, sin, mask, past_k, past_v);
    }
    hidden = result.hidden;
    out.present.keys.push_back(result.key);
    out.present.values.push_back(result.value);
  }
  out.hidden = norm(hidden);  // (B, T, C)
  return out;
}

torch::Tensor LlamaModelImpl::forward_with(const torch::Tensor& embeds,
                                           const torch::Tensor& positions,
                                           const AttentionCore& core) {
  PERPO_CHECK(embeds.dim() == 3 && embeds.size(2) == config.hidden_size,
              "decoder input embeddings must be (B, T, ", config.hidden_size, "), got ",
              embeds.sizes());
  PERPO_CHECK(positions.dim() == 2 && positions.size(1) == embeds.size(1),
              "decoder positions must be (B or 1, ", embeds.size(1), "), got ", positions.sizes());
  auto [cos, sin] = rotary_.cos_sin(positions, embeds.scalar_type());
  return forward_with_rotated(embeds, cos, sin, core);
}

torch::Tensor LlamaModelImpl::forward_with_rotated(const torch::Tensor& embeds,
                                                   const torch::Tensor& cos,
                                                   const torch::Tensor& sin,
                                                   const AttentionCore& core) {
  PERPO_CHECK(embeds.dim() == 3 && embeds.size(2) == config.hidden_size,
              "decoder input embeddings must be (B, T, ", config.hidden_size, "), got ",
              embeds.sizes());
  PERPO_CHECK(cos.dim() == 4 && cos.size(2) == embeds.size(1) && cos.sizes() == sin.sizes(),
              "decoder rotary tables must be (B or 1, 1, ", embeds.size(1), ", D), got ",
              cos.sizes(), " and ", sin.sizes());
  torch::Tensor hidden = embeds;  // (B, T, C)
  for (std::size_t i = 0; i < typed_layers.size(); ++i) {
    hidden = typed_layers[i]->forward_with(hidden, cos, sin, i, core).hidden;
  }
  return norm(hidden);  // (B, T, C)
}

}  // namespace perpo
