#include "perpo/model/model_size.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "perpo/core/error.h"

namespace perpo {
namespace {

std::int64_t checked_mul(std::int64_t a, std::int64_t b) {
  std::int64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) {
    throw input_error("the model's sizes overflow a 64-bit parameter count")
        .hint("check the sizes in config.json (hidden_size, num_hidden_layers, vocab_size)");
  }
  return product;
}

std::int64_t checked_add(std::int64_t a, std::int64_t b) {
  std::int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    throw input_error("the model's sizes overflow a 64-bit parameter count")
        .hint("check the sizes in config.json (hidden_size, num_hidden_layers, vocab_size)");
  }
  return sum;
}

std::int64_t elements(const ParameterShape& parameter) {
  std::int64_t count = 1;
  for (std::int64_t dim : parameter.shape) count = checked_mul(count, dim);
  return count;
}

std::int64_t total(const std::vector<ParameterShape>& parameters) {
  std::int64_t count = 0;
  for (const auto& parameter : parameters) count = checked_add(count, elements(parameter));
  return count;
}

using Shapes = std::vector<ParameterShape>;

void add(Shapes& out, std::string name, std::vector<std::int64_t> shape) {
  out.push_back({std::move(name), std::move(shape)});
}

/// A LoraLinear (or conv / embedding) weight and, when `bias`, its bias.
void add_linear(Shapes& out, const std::string& name, std::int64_t in, std::int64_t out_features,
                bool bias) {
  add(out, name + ".weight", {out_features, in});
  if (bias) add(out, name + ".bias", {out_features});
}

void add_layer_norm(Shapes& out, const std::string& name, std::int64_t size) {
  add(out, name + ".weight", {size});
  add(out, name + ".bias", {size});
}

// CLIP encoder layer `prefix` (ending in '.').
Shapes vision_layer(const VisionConfig& v, const std::string& prefix) {
  Shapes out;
  const std::int64_t C = v.hidden_size, M = v.intermediate_size;
  for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"})
    add_linear(out, prefix + "self_attn." + proj, C, C, true);
  add_layer_norm(out, prefix + "layer_norm1", C);
  add_linear(out, prefix + "mlp.fc1", C, M, true);
  add_linear(out, prefix + "mlp.fc2", M, C, true);
  add_layer_norm(out, prefix + "layer_norm2", C);
  return out;
}

// LLaMA decoder layer `prefix` (ending in '.').
Shapes text_layer(const TextConfig& t, const std::string& prefix) {
  Shapes out;
  const std::int64_t C = t.hidden_size, M = t.intermediate_size, D = t.effective_head_dim();
  const std::int64_t H = t.num_attention_heads, Hkv = t.num_key_value_heads;
  const bool qkv_bias = t.attention_bias || t.qkv_bias;
  add_linear(out, prefix + "self_attn.q_proj", C, checked_mul(H, D), qkv_bias);
  add_linear(out, prefix + "self_attn.k_proj", C, checked_mul(Hkv, D), qkv_bias);
  add_linear(out, prefix + "self_attn.v_proj", C, checked_mul(Hkv, D), qkv_bias);
  add_linear(out, prefix + "self_attn.o_proj", checked_mul(H, D), C, t.attention_bias);
  add_linear(out, prefix + "mlp.gate_proj", C, M, t.mlp_bias);
  add_linear(out, prefix + "mlp.up_proj", C, M, t.mlp_bias);
  add_linear(out, prefix + "mlp.down_proj", M, C, t.mlp_bias);
  add(out, prefix + "input_layernorm.weight", {C});
  add(out, prefix + "post_attention_layernorm.weight", {C});
  return out;
}

// Everything outside the repeated layers.
Shapes outside_layers(const ModelConfig& config) {
  Shapes out;
  const VisionConfig& v = config.vision;
  const TextConfig& t = config.text;
  const std::string vision = "vision_tower.vision_model.";
  const std::int64_t Cv = v.hidden_size, C = t.hidden_size, p = v.patch_size;
  const std::int64_t side = p > 0 ? v.image_size / p : 0;
  add(out, vision + "embeddings.class_embedding", {Cv});
  add(out, vision + "embeddings.patch_embedding.weight", {Cv, v.num_channels, p, p});
  add(out, vision + "embeddings.position_embedding.weight", {checked_mul(side, side) + 1, Cv});
  add_layer_norm(out, vision + "pre_layrnorm", Cv);
  add_layer_norm(out, vision + "post_layernorm", Cv);
  add_linear(out, "multi_modal_projector.linear_1", Cv, C, config.multimodal_projector_bias);
  add_linear(out, "multi_modal_projector.linear_2", C, C, config.multimodal_projector_bias);
  add(out, "language_model.embed_tokens.weight", {t.vocab_size, C});
  add(out, "language_model.norm.weight", {C});
  if (!config.tie_word_embeddings) add(out, "lm_head.weight", {t.vocab_size, C});
  return out;
}

// Qwen2.5-VL vision block `prefix` (ending in '.'): RMSNorms without bias, one qkv Linear, SwiGLU.
Shapes qwen_vision_block(const QwenVisionConfig& v, const std::string& prefix) {
  Shapes out;
  const std::int64_t C = v.hidden_size, F = v.intermediate_size;
  add(out, prefix + "norm1.weight", {C});
  add(out, prefix + "norm2.weight", {C});
  add_linear(out, prefix + "attn.qkv", C, checked_mul(3, C), true);
  add_linear(out, prefix + "attn.proj", C, C, true);
  add_linear(out, prefix + "mlp.gate_proj", C, F, true);
  add_linear(out, prefix + "mlp.up_proj", C, F, true);
  add_linear(out, prefix + "mlp.down_proj", F, C, true);
  return out;
}

// The Qwen2 decoder's TextConfig as Qwen2_5VLModel builds it: q/k/v biases only.
TextConfig qwen2_text(const Qwen2_5VLConfig& config) {
  TextConfig text = config.text;
  text.qkv_bias = true;
  text.attention_bias = false;
  text.mlp_bias = false;
  return text;
}

// Everything of Qwen2.5-VL outside the repeated blocks and layers.
Shapes qwen_outside_layers(const Qwen2_5VLConfig& config) {
  Shapes out;
  const QwenVisionConfig& v = config.vision;
  const std::int64_t Cv = v.hidden_size, C = config.text.hidden_size, V = config.text.vocab_size;
  const std::int64_t merged =
      checked_mul(Cv, checked_mul(v.spatial_merge_size, v.spatial_merge_size));
  add(out, "visual.patch_embed.proj.weight",
      {Cv, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size});
  add(out, "visual.merger.ln_q.weight", {Cv});
  add_linear(out, "visual.merger.mlp.0", merged, merged, true);
  add_linear(out, "visual.merger.mlp.2", merged, v.out_hidden_size, true);
  add(out, "language_model.embed_tokens.weight", {V, C});
  add(out, "language_model.norm.weight", {C});
  if (!config.tie_word_embeddings) add(out, "lm_head.weight", {V, C});
  return out;
}

}  // namespace

std::vector<ParameterShape> model_parameter_shapes(const ModelConfig& config) {
  Shapes out = outside_layers(config);
  for (int i = 0; i < config.vision.num_hidden_layers; ++i) {
    Shapes layer = vision_layer(
        config.vision, "vision_tower.vision_model.encoder.layers." + std::to_string(i) + ".");
    out.insert(out.end(), layer.begin(), layer.end());
  }
  for (int i = 0; i < config.text.num_hidden_layers; ++i) {
    Shapes layer = text_layer(config.text, "language_model.layers." + std::to_string(i) + ".");
    out.insert(out.end(), layer.begin(), layer.end());
  }
  return out;
}

ModelSize model_size(const ModelConfig& config) {
  PERPO_CHECK_INPUT(config.vision.num_hidden_layers >= 0 && config.text.num_hidden_layers >= 0,
                    "layer counts must not be negative");
  std::int64_t count = total(outside_layers(config));
  count = checked_add(
      count, checked_mul(config.vision.num_hidden_layers, total(vision_layer(config.vision, ""))));
  count = checked_add(
      count, checked_mul(config.text.num_hidden_layers, total(text_layer(config.text, ""))));
  ModelSize size;
  size.parameters = count;
  size.fp32_bytes = static_cast<std::uint64_t>(checked_mul(count, 4));
  return size;
}

std::vector<ParameterShape> model_parameter_shapes(const Qwen2_5VLConfig& config) {
  Shapes out = qwen_outside_layers(config);
  for (int i = 0; i < config.vision.depth; ++i) {
    Shapes block = qwen_vision_block(config.vision, "visual.blocks." + std::to_string(i) + ".");
    out.insert(out.end(), block.begin(), block.end());
  }
  const TextConfig text = qwen2_text(config);
  for (int i = 0; i < text.num_hidden_layers; ++i) {
    Shapes layer = text_layer(text, "language_model.layers." + std::to_string(i) + ".");
    out.insert(out.end(), layer.begin(), layer.end());
  }
  return out;
}

ModelSize model_size(const Qwen2_5VLConfig& config) {
  PERPO_CHECK_INPUT(config.vision.depth >= 0 && config.text.num_hidden_layers >= 0,
                    "layer counts must not be negative");
  const TextConfig text = qwen2_text(config);
  std::int64_t count = total(qwen_outside_layers(config));
  count = checked_add(
      count, checked_mul(config.vision.depth, total(qwen_vision_block(config.vision, ""))));
  count = checked_add(count, checked_mul(text.num_hidden_layers, total(text_layer(text, ""))));
  ModelSize size;
  size.parameters = count;
  size.fp32_bytes = static_cast<std::uint64_t>(checked_mul(count, 4));
  return size;
}

std::optional<std::uint64_t> available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    std::istringstream fields(line);
    std::string key, unit;
    std::uint64_t kib = 0;
    if (fields >> key >> kib >> unit && key == "MemAvailable:" && unit == "kB") return kib * 1024;
  }
  return std::nullopt;
}

std::string format_bytes(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  return text;
}

namespace {

void check_fits(const ModelSize& size, const TextConfig& t, std::optional<std::uint64_t> available,
                const std::string& hint) {
  if (!available || size.fp32_bytes <= *available) return;
  throw input_error("the model needs ", size.parameters, " parameters (",
                    format_bytes(size.fp32_bytes), " in fp32, as perpo builds it) but only ",
                    format_bytes(*available),
                    " of memory are available (MemAvailable); text_config: hidden_size ",
                    t.hidden_size, ", intermediate_size ", t.intermediate_size,
                    ", num_hidden_layers ", t.num_hidden_layers, ", vocab_size ", t.vocab_size)
      .hint(hint);
}

}  // namespace

void check_model_fits_memory(const ModelConfig& config, std::optional<std::uint64_t> available) {
  check_fits(model_size(config), config.text, available,
             "check the sizes in config.json (a config.json without text_config gets LLaMA-7B's), "
             "or free memory / use a machine with more");
}

void check_model_fits_memory(const Qwen2_5VLConfig& config,
                             std::optional<std::uint64_t> available) {
  check_fits(model_size(config), config.text, available,
             "check the sizes in config.json (Qwen2.5-VL-7B: about 8.3e9 parameters, 31 GiB in "
             "fp32), or free memory / use a machine with more");
}

}  // namespace perpo
