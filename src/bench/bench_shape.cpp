// The shapes of `perpo bench` and their FLOP counts (formulas in bench_shape.h).
#include "perpo/bench/bench_shape.h"

#include <algorithm>
#include <utility>

#include "perpo/core/error.h"
#include "perpo/core/strings.h"
#include "perpo/image/qwen_vl_preprocess.h"

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

/// A Qwen2.5-VL-*-Instruct config.json as parse_qwen2_5_vl_config reads it: the Qwen2 decoder
/// (q/k/v biases, rms_norm_eps 1e-6, rope_theta 1e6, 128000 positions, mrope_section
/// [16, 24, 24]) after the Instruct models' vision tower (QwenVisionConfig's defaults: 32 blocks of
/// 1280, window 112, full attention in blocks 7, 15, 23, 31) and the Hub's token ids.
Qwen2_5VLConfig qwen_instruct_config(int hidden, int intermediate, int layers, int heads,
                                     int kv_heads, int vocab, bool tied) {
  Qwen2_5VLConfig config;
  TextConfig& t = config.text;
  t.vocab_size = vocab;
  t.hidden_size = hidden;
  t.intermediate_size = intermediate;
  t.num_hidden_layers = layers;
  t.num_attention_heads = heads;
  t.num_key_value_heads = kv_heads;
  t.rms_norm_eps = 1e-6;
  t.rope_theta = 1e6;
  t.max_position_embeddings = 128000;
  t.qkv_bias = true;
  t.pad_token_id = -1;
  config.mrope_section = {16, 24, 24};
  config.tie_word_embeddings = tied;
  config.vision.out_hidden_size = hidden;
  return config;
}

/// A tiny Qwen2.5-VL with every part of the real one: 2 vision blocks (one window, one full
/// attention), windows of 2 x 2 merged tokens, GQA, mrope_section [2, 3, 3] of head dim 16.
Qwen2_5VLConfig qwen_tiny_config() {
  Qwen2_5VLConfig config = qwen_instruct_config(64, 128, 2, 4, 2, 256, /*tied=*/false);
  config.text.max_position_embeddings = 512;
  config.mrope_section = {2, 3, 3};
  QwenVisionConfig& v = config.vision;
  v.depth = 2;
  v.hidden_size = 32;
  v.intermediate_size = 64;
  v.num_heads = 2;
  v.window_size = 56;  // 56 / 2 / 14 = 2 merged tokens per window side
  v.fullatt_block_indexes = {1};
  config.vision_start_token_id = 252;
  config.vision_end_token_id = 253;
  config.video_token_id = 254;
  config.image_token_id = 255;
  return config;
}

/// The patch grid (rows, columns) of the bench's square image after Qwen2.5-VL's smart_resize
/// with the image processor's default min / max pixels (what Qwen2_5VLModel(config) uses).
std::pair<std::int64_t, std::int64_t> qwen_grid(const BenchShape& shape) {
  const QwenVisionConfig& v = shape.qwen.vision;
  const QwenVlImageOptions defaults;
  const ImageSize size =
      smart_resize(shape.image_side, shape.image_side, v.patch_size * v.spatial_merge_size,
                   defaults.min_pixels, defaults.max_pixels);
  return {size.height / v.patch_size, size.width / v.patch_size};
}

BenchShape llava_shape(std::string name, ModelConfig config, std::int64_t prompt,
                       std::int64_t answers, std::int64_t answer_tokens, std::int64_t sampled,
                       std::string description) {
  BenchShape shape;
  shape.name = std::move(name);
  shape.model_type = "llava";
  shape.llava = std::move(config);
  shape.image_side = shape.llava.vision.image_size;
  shape.image_tokens = shape.llava.image_tokens();
  shape.prompt_tokens = prompt;
  shape.answers = answers;
  shape.answer_tokens = answer_tokens;
  shape.sampled_tokens = sampled;
  shape.description = std::move(description);
  return shape;
}

/// `text_tokens` text tokens (the two vision markers included) around the image's merged tokens.
BenchShape qwen_shape(std::string name, Qwen2_5VLConfig config, int image_side,
                      std::int64_t text_tokens, std::int64_t answers, std::int64_t answer_tokens,
                      std::int64_t sampled, std::string description) {
  BenchShape shape;
  shape.name = std::move(name);
  shape.model_type = "qwen2_5_vl";
  shape.qwen = std::move(config);
  shape.image_side = image_side;
  const auto [rows, columns] = qwen_grid(shape);
  shape.image_tokens = rows * columns / shape.qwen.vision.merge_unit();
  shape.prompt_tokens = shape.image_tokens + text_tokens;
  shape.answers = answers;
  shape.answer_tokens = answer_tokens;
  shape.sampled_tokens = sampled;
  shape.description = std::move(description);
  return shape;
}

bool is_trained(const BenchShape& shape, const std::string& name) {
  if (shape.is_qwen()) return !starts_with(name, "visual.") || starts_with(name, "visual.merger.");
  return !starts_with(name, "vision_tower.");
}

std::vector<ParameterShape> parameter_shapes(const BenchShape& shape) {
  return shape.is_qwen() ? model_parameter_shapes(shape.qwen) : model_parameter_shapes(shape.llava);
}

std::uint64_t elements(const ParameterShape& parameter) {
  std::uint64_t count = 1;
  for (std::int64_t size : parameter.shape) count *= static_cast<std::uint64_t>(size);
  return count;
}

/// Weights in dtype_bytes; per trained element a gradient, two fp32 moments, an fp32 master copy
/// when the weights are not fp32.
std::uint64_t state_bytes(std::uint64_t weights, std::uint64_t trained, int dtype_bytes) {
  const std::uint64_t per_trained = dtype_bytes + 8 + (dtype_bytes == 4 ? 0 : 4);
  return weights * dtype_bytes + trained * per_trained;
}

/// Forward FLOPs of one image through the vision tower and the projector (the merger).
FlopCount image_forward_flops(const BenchShape& shape) {
  FlopCount flops;
  if (shape.is_qwen()) {
    const auto [rows, columns] = qwen_grid(shape);
    flops.vision = qwen_vision_forward_flops(shape.qwen.vision, rows, columns);
    flops.projector = qwen_merger_forward_flops(shape.qwen.vision, rows * columns);
  } else {
    flops.vision = vision_forward_flops(shape.llava);
    flops.projector = projector_forward_flops(shape.llava);
  }
  return flops;
}

}  // namespace

std::vector<std::string> bench_shape_names() {
  return {"tiny", "small", "7b", "qwen-tiny", "qwen2.5-vl-3b", "qwen2.5-vl-7b"};
}

BenchShape bench_shape(const std::string& name) {
  if (name == "tiny") {
    return llava_shape("tiny", tiny_config(), 32, 4, 8, 8,
                       "CLIP 2 layers (hidden 32, 28 px, 4 image tokens) + LLaMA 2 layers (hidden "
                       "64, 4 heads on 2 kv heads, vocab 256)");
  }
  if (name == "small") {
    return llava_shape("small", small_config(), 620, 20, 15, 16,
                       "CLIP 2 layers (hidden 64, 336 px, 576 image tokens) + LLaMA 4 layers "
                       "(hidden 256, 4 heads on 2 kv heads, MLP 688, vocab 1000)");
  }
  if (name == "7b") {
    // ModelConfig's defaults are llava-1.5-7b-hf: CLIP ViT-L/14-336 + Vicuna-7B (LLaMA-2 7B).
    return llava_shape("7b", ModelConfig{}, 620, 20, 15, 16,
                       "LLaVA-1.5-7B: CLIP ViT-L/14-336 (24 layers, 576 image tokens) + Vicuna-7B "
                       "(32 layers, hidden 4096, vocab 32064)");
  }
  // Qwen shapes: the 44 text tokens of the LLaVA shapes' prompts (here with <|vision_start|> and
  // <|vision_end|> among them) and the same N, T, G, so that the families compare.
  if (name == "qwen-tiny") {
    return qwen_shape("qwen-tiny", qwen_tiny_config(), 112, 32, 4, 8, 8,
                      "Qwen2.5-VL vision 2 blocks (hidden 32, one window + one full attention; "
                      "112 x 112 px = 8 x 8 patches -> 16 merged tokens in 4 windows) + Qwen2 2 "
                      "layers (hidden 64, 4 heads on 2 kv heads, vocab 256)");
  }
  if (name == "qwen2.5-vl-3b") {
    return qwen_shape("qwen2.5-vl-3b", qwen_instruct_config(2048, 11008, 36, 16, 2, 151936, true),
                      448, 44, 20, 15, 16,
                      "Qwen2.5-VL-3B-Instruct: vision 32 blocks (hidden 1280; 448 x 448 px = 32 x "
                      "32 patches -> 256 merged tokens, 16 windows) + Qwen2 36 layers (hidden "
                      "2048, 16 heads on 2 kv heads, vocab 151936, tied head)");
  }
  if (name == "qwen2.5-vl-7b") {
    return qwen_shape("qwen2.5-vl-7b", qwen_instruct_config(3584, 18944, 28, 28, 4, 152064, false),
                      448, 44, 20, 15, 16,
                      "Qwen2.5-VL-7B-Instruct: vision 32 blocks (hidden 1280; 448 x 448 px = 32 x "
                      "32 patches -> 256 merged tokens, 16 windows) + Qwen2 28 layers (hidden "
                      "3584, 28 heads on 4 kv heads, vocab 152064)");
  }
  throw input_error("unknown bench shape '", name, "'")
      .hint("use one of " + join(bench_shape_names(), ", "));
}

std::vector<std::int64_t> bench_image_block(const BenchShape& shape) {
  const auto count = static_cast<std::size_t>(shape.image_tokens);
  if (!shape.is_qwen()) return std::vector<std::int64_t>(count, shape.llava.image_token_index);
  std::vector<std::int64_t> block = {shape.qwen.vision_start_token_id};
  block.insert(block.end(), count, shape.qwen.image_token_id);
  block.push_back(shape.qwen.vision_end_token_id);
  return block;
}

std::int64_t bench_text_id_limit(const BenchShape& shape) {
  const std::int64_t vocab = shape.text().vocab_size;
  if (!shape.is_qwen()) return std::min<std::int64_t>(vocab, shape.llava.image_token_index);
  const Qwen2_5VLConfig& q = shape.qwen;
  return std::min(
      {vocab, q.image_token_id, q.video_token_id, q.vision_start_token_id, q.vision_end_token_id});
}

ModelSize bench_model_size(const BenchShape& shape) {
  return shape.is_qwen() ? model_size(shape.qwen) : model_size(shape.llava);
}

std::int64_t bench_trained_parameters(const BenchShape& shape) {
  std::uint64_t trained = 0;
  for (const ParameterShape& parameter : parameter_shapes(shape)) {
    if (is_trained(shape, parameter.name)) trained += elements(parameter);
  }
  return static_cast<std::int64_t>(trained);
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

std::vector<std::int64_t> qwen_window_patches(const QwenVisionConfig& vision, std::int64_t grid_h,
                                              std::int64_t grid_w) {
  const std::int64_t merge = vision.spatial_merge_size, side = vision.merged_window();
  const std::int64_t rows = grid_h / merge, columns = grid_w / merge;  // merged grid
  std::vector<std::int64_t> windows;
  for (std::int64_t row = 0; row < rows; row += side) {
    for (std::int64_t column = 0; column < columns; column += side) {
      windows.push_back(std::min(side, rows - row) * std::min(side, columns - column) *
                        vision.merge_unit());
    }
  }
  return windows;
}

double qwen_vision_forward_flops(const QwenVisionConfig& vision, std::int64_t grid_h,
                                 std::int64_t grid_w) {
  const double cv = vision.hidden_size, iv = vision.intermediate_size;
  const double patches = static_cast<double>(grid_h) * grid_w;
  double window_pairs = 0;  // sum of w_i^2
  for (std::int64_t window : qwen_window_patches(vision, grid_h, grid_w)) {
    window_pairs += static_cast<double>(window) * window;
  }
  double attention = 0;
  for (int block = 0; block < vision.depth; ++block) {
    attention += 4.0 * cv * (vision.full_attention(block) ? patches * patches : window_pairs);
  }
  const double patch_embedding = 2.0 * patches * vision.patch_values() * cv;
  const double linear = vision.depth * patches * (8.0 * cv * cv + 6.0 * cv * iv);
  return patch_embedding + linear + attention;
}

double qwen_merger_forward_flops(const QwenVisionConfig& vision, std::int64_t patches) {
  const double merged = static_cast<double>(patches) / vision.merge_unit();
  const double width = static_cast<double>(vision.hidden_size) * vision.merge_unit();
  return 2.0 * merged * (width * width + width * vision.out_hidden_size);
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
  FlopCount flops = image_forward_flops(shape);
  flops.projector *= 2;  // forward + its weight gradients
  flops.decoder = 3 * decoder_forward_flops(shape.text(), p + n * t, pairs);
  flops.lm_head = 3 * lm_head_flops(shape.text(), n * t);
  return flops;
}

FlopCount sampling_flops(const BenchShape& shape) {
  const double p = shape.prompt_tokens, n = shape.answers, g = shape.sampled_tokens;
  const double steps = g - 1;  // decoder calls per answer after the prefix
  const double pairs = p * (p + 1) / 2 + n * (steps * p + steps * (steps + 1) / 2);
  FlopCount flops = image_forward_flops(shape);
  flops.decoder = decoder_forward_flops(shape.text(), p + n * steps, pairs);
  flops.lm_head = lm_head_flops(shape.text(), 1 + n * steps);
  return flops;
}

std::uint64_t train_state_bytes(const BenchShape& shape, int dtype_bytes) {
  std::uint64_t weights = 0, trained = 0;
  for (const ParameterShape& parameter : parameter_shapes(shape)) {
    weights += elements(parameter);
    if (is_trained(shape, parameter.name)) trained += elements(parameter);
  }
  return state_bytes(weights, trained, dtype_bytes);
}

std::uint64_t train_state_bytes(const ModelConfig& config, int dtype_bytes) {
  BenchShape shape;
  shape.model_type = "llava";
  shape.llava = config;
  return train_state_bytes(shape, dtype_bytes);
}

}  // namespace perpo
