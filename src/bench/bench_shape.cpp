// The shapes of `perpo bench` and their FLOP counts (formulas in bench_shape.h).
#include "perpo/bench/bench_shape.h"

#include "perpo/core/error.h"
#include "perpo/core/strings.h"
#include "perpo/model/model_size.h"

namespace perpo {

namespace {

ModelConfig tiny_config() {
  ModelConfig config;
  config.vision.hidden_size = 32;
  config.vision.intermediate_size = 64;
  config.vision.num_hidden_layers = 2;
  config.vision.num_attention_heads = 2;
  config.vision.image_size = 28;
  config.vision.patch_size = 14;  // 4 image tokens
  config.text.vocab_size = 256;
  config.text.hidden_size = 64;
  config.text.intermediate_size = 128;
  config.text.num_hidden_layers = 2;
  config.text.num_attention_heads = 4;
  config.text.num_key_value_heads = 2;
  config.text.max_position_embeddings = 512;
  config.image_token_index = 255;
  return config;
}

// bench/train_step.cpp's image576 shape: a LLaVA-1.5 image (336 px, patch 14, 576 tokens) in
// front of a small decoder, so that the prefix is as long as the real one.
ModelConfig small_config() {
  ModelConfig config;
  config.vision.hidden_size = 64;
  config.vision.intermediate_size = 256;
  config.vision.num_hidden_layers = 2;
  config.vision.num_attention_heads = 4;
  config.vision.image_size = 336;
  config.vision.patch_size = 14;
  config.text.vocab_size = 1000;
  config.text.hidden_size = 256;
  config.text.intermediate_size = 688;
  config.text.num_hidden_layers = 4;
  config.text.num_attention_heads = 4;
  config.text.num_key_value_heads = 2;
  config.text.max_position_embeddings = 2048;
  config.image_token_index = 999;
  return config;
}

}  // namespace

std::vector<std::string> bench_shape_names() { return {"tiny", "small", "7b"}; }

BenchShape bench_shape(const std::string& name) {
  if (name == "tiny") {
    return {"tiny",
            tiny_config(),
            32,
            4,
            8,
            8,
            "CLIP 2 layers (hidden 32, 28 px, 4 image tokens) + LLaMA 2 layers (hidden 64, 4 "
            "heads on 2 kv heads, vocab 256)"};
  }
  if (name == "small") {
    return {"small",
            small_config(),
            620,
            20,
            15,
            16,
            "CLIP 2 layers (hidden 64, 336 px, 576 image tokens) + LLaMA 4 layers (hidden 256, 4 "
            "heads on 2 kv heads, MLP 688, vocab 1000)"};
  }
  if (name == "7b") {
    // ModelConfig's defaults are llava-1.5-7b-hf: CLIP ViT-L/14-336 + Vicuna-7B (LLaMA-2 7B).
    return {"7b",
            ModelConfig{},
            620,
            20,
            15,
            16,
            "LLaVA-1.5-7B: CLIP ViT-L/14-336 (24 layers, 576 image tokens) + Vicuna-7B (32 "
            "layers, hidden 4096, vocab 32064)"};
  }
  throw input_error("unknown bench shape '", name, "'")
      .hint("use one of " + join(bench_shape_names(), ", "));
}

double vision_forward_flops(const ModelConfig& config) {
  const VisionConfig& v = config.vision;
  const double cv = v.hidden_size, iv = v.intermediate_size, p = v.patch_size;
  const double patches = v.num_patches(), seq = patches + 1;  // + CLS
  const int layers = v.num_hidden_layers;
  const int run = config.vision_feature_layer < 0 ? layers + 1 + config.vision_feature_layer
                                                  : config.vision_feature_layer;
  const double patch_embedding = 2.0 * patches * (v.num_channels * p * p) * cv;
  const double linear = run * seq * (8.0 * cv * cv + 4.0 * cv * iv);
  const double attention = run * 4.0 * cv * seq * seq;
  return patch_embedding + linear + attention;
}

double projector_forward_flops(const ModelConfig& config) {
  const double cv = config.vision.hidden_size, c = config.text.hidden_size;
  return 2.0 * config.image_tokens() * (cv * c + c * c);
}

double decoder_forward_flops(const TextConfig& text, double tokens, double attended_pairs) {
  const double c = text.hidden_size, i = text.intermediate_size;
  const double h = text.num_attention_heads, hkv = text.num_key_value_heads;
  const double d = text.effective_head_dim(), layers = text.num_hidden_layers;
  const double per_token = 2.0 * (c * h * d + 2.0 * c * hkv * d + h * d * c + 3.0 * c * i);
  return layers * (tokens * per_token + 4.0 * h * d * attended_pairs);
}

double lm_head_flops(const TextConfig& text, double positions) {
  return 2.0 * text.hidden_size * static_cast<double>(text.vocab_size) * positions;
}

FlopCount train_step_flops(const BenchShape& shape) {
  const double p = shape.prompt_tokens, n = shape.answers, t = shape.answer_tokens;
  const double pairs = p * (p + 1) / 2 + n * (t * p + t * (t + 1) / 2);
  FlopCount flops;
  flops.vision = vision_forward_flops(shape.model);
  flops.projector = 2 * projector_forward_flops(shape.model);
  flops.decoder = 3 * decoder_forward_flops(shape.model.text, p + n * t, pairs);
  flops.lm_head = 3 * lm_head_flops(shape.model.text, n * t);
  return flops;
}

FlopCount sampling_flops(const BenchShape& shape) {
  const double p = shape.prompt_tokens, n = shape.answers, g = shape.sampled_tokens;
  const double steps = g - 1;  // decoder calls per answer after the prefix
  const double pairs = p * (p + 1) / 2 + n * (steps * p + steps * (steps + 1) / 2);
  FlopCount flops;
  flops.vision = vision_forward_flops(shape.model);
  flops.projector = projector_forward_flops(shape.model);
  flops.decoder = decoder_forward_flops(shape.model.text, p + n * steps, pairs);
  flops.lm_head = lm_head_flops(shape.model.text, 1 + n * steps);
  return flops;
}

std::uint64_t train_state_bytes(const ModelConfig& config, int dtype_bytes) {
  std::uint64_t weights = 0, trained = 0;
  for (const ParameterShape& parameter : model_parameter_shapes(config)) {
    std::uint64_t elements = 1;
    for (std::int64_t size : parameter.shape) elements *= static_cast<std::uint64_t>(size);
    weights += elements;
    if (!starts_with(parameter.name, "vision_tower.")) trained += elements;
  }
  const std::uint64_t per_trained = dtype_bytes + 8 + (dtype_bytes == 4 ? 0 : 4);
  return weights * dtype_bytes + trained * per_trained;
}

}  // namespace perpo
