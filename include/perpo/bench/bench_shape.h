// The model shapes `perpo bench` runs, and the matmul FLOPs of one PerPO training step and of one
// sampled list on them, counted from the shapes. Two families: LLaVA-1.5 (tiny, small, 7b) and
// Qwen2.5-VL (qwen-tiny, qwen2.5-vl-3b, qwen2.5-vl-7b); the bench builds either through the family
// interface (model/vlm.h) and runs the same code on both.
//
// Shape legend: P = prompt tokens (image tokens included), N = answers of a list, T = answer
// tokens (training), G = sampled tokens per answer, C = text hidden, I = MLP width, V = vocab,
// H / Hkv = query / key-value heads, D = head dim, L = decoder layers, Np = image tokens.
// LLaVA's vision: Cv, Iv, Lv layers run (up to vision_feature_layer), S = patches + 1 (CLS).
// Qwen2.5-VL's vision: Cv, Iv, Lv blocks, S = patches (gh x gw of the resized image), Pv = values
// per patch (3 x 2 x 14 x 14 = 1176), w_i = patches of window i, Co = the merger's output (= C).
//
// FLOP counting (one multiply-add = 2 FLOPs; only matrix products: norms, softmax, rotary,
// activations, biases and the optimizer are left out, as in the usual MFU accounting):
//   decoder, per token:        2 L (C*H*D + 2*C*Hkv*D + H*D*C + 3*C*I)   (q, k, v, o, MLP)
//   decoder attention:         4 L H D per (query, attended key) pair     (scores + values)
//   lm_head:                   2 C V per position whose logits are needed (tied or not)
//   LLaVA vision, per image:   2 Np (3 p^2) Cv + Lv S (8 Cv^2 + 4 Cv Iv) + 4 Lv Cv S^2
//   LLaVA projector:           2 Np (Cv C + C C)
//   Qwen vision, per image:    2 S Pv Cv + Lv S (8 Cv^2 + 6 Cv Iv)          (qkv, proj, SwiGLU)
//                              + 4 Cv (full blocks x S^2 + window blocks x sum_i w_i^2)
//   Qwen merger (projector):   2 Np (4Cv * 4Cv + 4Cv * Co)                 (Np = S / 4)
// Windows: W x W merged tokens (W = window_size / merge / patch, 4 for 112 px), the merged grid cut
// row-major into them, the last row / column of windows shorter where W does not divide it
// (qwen_vision_windows.h); e.g. 448 x 448 px: 16 x 16 merged tokens, 16 windows of 64 patches.
// Attended pairs: the prefix is causal, P(P+1)/2; answer token t (1-based) of each answer sees
// P + t keys, so the N answers add N (T P + T(T+1)/2); the prefix runs once (perpo's computation).
// Training step = vision forward (tower frozen) + 2 x projector forward (its weight gradients
// only) + 3 x (decoder + lm_head) forward (backward = 2 x forward); logits are needed at the N T
// answer positions. Recomputation (chunked log-probs, checkpointing) is not counted: these are
// model FLOPs, as MFU defines them.
// Sampling a list = vision + projector + prefix (P tokens, logits at the last one) + N (G - 1)
// decoding steps (step k of an answer sees P + k keys, logits at every step): the G-th token of
// an answer is sampled but never fed back.
//
//   perpo::BenchShape shape = perpo::bench_shape("qwen2.5-vl-7b");
//   double flops = perpo::train_step_flops(shape).total();
//   std::int64_t parameters = perpo::bench_model_size(shape).parameters;   // 8,292,166,656
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perpo/model/model_config.h"
#include "perpo/model/model_size.h"
#include "perpo/model/qwen2_5_vl_config.h"

namespace perpo {

struct BenchShape {
  std::string name;        // e.g. small, 7b, qwen2.5-vl-7b
  std::string model_type;  // the family, as config.json says: llava | qwen2_5_vl
  ModelConfig llava;       // model_type llava: random weights of this architecture
  Qwen2_5VLConfig qwen;    // model_type qwen2_5_vl: random weights of this architecture
  int image_side = 0;      // the bench's square image in pixels, before preprocessing
  std::int64_t image_tokens =
      0;  // Np placeholder tokens of the image, e.g. 576 (LLaVA), 256 (Qwen)
  std::int64_t prompt_tokens = 0;   // P, e.g. 620 (576 image tokens + 44 text tokens)
  std::int64_t answers = 0;         // N, e.g. 20
  std::int64_t answer_tokens = 0;   // T of each answer in the training step, e.g. 15
  std::int64_t sampled_tokens = 0;  // G sampled per answer, e.g. 16
  std::string description;          // one line for the report

  bool is_qwen() const { return model_type == "qwen2_5_vl"; }
  /// The decoder's architecture (either family's).
  const TextConfig& text() const { return is_qwen() ? qwen.text : llava.text; }
};

/// tiny (seconds on CPU), small (576 image tokens, about a minute on CPU), 7b (LLaVA-1.5-7B:
/// CLIP ViT-L/14-336 + Vicuna-7B); qwen-tiny (seconds on CPU), qwen2.5-vl-3b, qwen2.5-vl-7b
/// (the Instruct models' config.json, a 448 x 448 image: 256 merged tokens). Throws perpo::Error
/// (input) for another name.
BenchShape bench_shape(const std::string& name);
std::vector<std::string> bench_shape_names();

/// The prompt's image block as the family's chat template writes it: LLaVA Np image tokens;
/// Qwen2.5-VL <|vision_start|>, Np <|image_pad|>, <|vision_end|>. The bench puts it at position 1.
std::vector<std::int64_t> bench_image_block(const BenchShape& shape);
/// Random text ids are drawn below this id: none of the family's image / vision ids.
std::int64_t bench_text_id_limit(const BenchShape& shape);

/// Every parameter of the shape's model, and their totals (model_size.h, per family).
ModelSize bench_model_size(const BenchShape& shape);
/// Parameters the bench trains: all but the vision tower (LLaVA vision_tower.*; Qwen2.5-VL
/// visual.* except the merger visual.merger.*, which is the projector), as
/// set_trainable(vision false, projector true, llm true).
std::int64_t bench_trained_parameters(const BenchShape& shape);

/// Forward FLOPs of the parts of one step (see the header comment).
struct FlopCount {
  double vision = 0;     // vision tower
  double projector = 0;  // multi-modal projector (Qwen2.5-VL: the patch merger)
  double decoder = 0;    // decoder layers: linear layers + attention
  double lm_head = 0;    // logits
  double total() const { return vision + projector + decoder + lm_head; }
};

/// LLaVA's vision tower forward on one image: patch embedding + the layers up to
/// vision_feature_layer.
double vision_forward_flops(const ModelConfig& config);
/// LLaVA's projector forward on one image's Np features.
double projector_forward_flops(const ModelConfig& config);
/// Qwen2.5-VL's vision tower forward (patch embedding + blocks, the merger aside) on one image of
/// grid_h x grid_w patches.
double qwen_vision_forward_flops(const QwenVisionConfig& vision, std::int64_t grid_h,
                                 std::int64_t grid_w);
/// Patches of each attention window of a grid_h x grid_w image, in window order.
std::vector<std::int64_t> qwen_window_patches(const QwenVisionConfig& vision, std::int64_t grid_h,
                                              std::int64_t grid_w);
/// Qwen2.5-VL's patch merger forward on `patches` patches (patches / merge^2 tokens out).
double qwen_merger_forward_flops(const QwenVisionConfig& vision, std::int64_t patches);
/// Decoder layers on `tokens` new tokens with `attended_pairs` (query, key) pairs in total.
double decoder_forward_flops(const TextConfig& text, double tokens, double attended_pairs);
/// lm_head on `positions` positions.
double lm_head_flops(const TextConfig& text, double positions);

/// One PerPO training step on one list (forward and backward counted, as described above).
FlopCount train_step_flops(const BenchShape& shape);
/// Sampling N answers of G tokens on one prompt.
FlopCount sampling_flops(const BenchShape& shape);

/// Bytes a training step needs at least: weights in `dtype_bytes`, and for each trained
/// parameter (bench_trained_parameters) its gradient (same dtype) and AdamW's fp32 moments (+ an
/// fp32 master copy when the weights are not fp32). Activations are not counted.
std::uint64_t train_state_bytes(const BenchShape& shape, int dtype_bytes);
/// The same for a LLaVA architecture (vision_tower.* frozen).
std::uint64_t train_state_bytes(const ModelConfig& config, int dtype_bytes);

}  // namespace perpo
