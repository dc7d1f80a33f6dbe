// The model shapes `perpo bench` runs, and the matmul FLOPs of one PerPO training step and of one
// sampled list on them, counted from the shapes.
//
// Shape legend: P = prompt tokens (image tokens included), N = answers of a list, T = answer
// tokens (training), G = sampled tokens per answer, C = text hidden, I = MLP width, V = vocab,
// H / Hkv = query / key-value heads, D = head dim, L = decoder layers; vision: Cv, Iv, Lv layers
// run (up to vision_feature_layer), S = patches + 1 (CLS), Np = image tokens.
//
// FLOP counting (one multiply-add = 2 FLOPs; only matrix products: norms, softmax, rotary,
// activations and the optimizer are left out, as in the usual MFU accounting):
//   decoder, per token:        2 L (C*H*D + 2*C*Hkv*D + H*D*C + 3*C*I)   (q, k, v, o, MLP)
//   decoder attention:         4 L H D per (query, attended key) pair     (scores + values)
//   lm_head:                   2 C V per position whose logits are needed
//   vision, per image:         2 Np (3 p^2) Cv + Lv S (8 Cv^2 + 4 Cv Iv) + 4 Lv Cv S^2
//   projector, per image:      2 Np (Cv C + C C)
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
//   perpo::BenchShape shape = perpo::bench_shape("small");
//   double flops = perpo::train_step_flops(shape).total();
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perpo/model/model_config.h"

namespace perpo {

struct BenchShape {
  std::string name;             // tiny | small | 7b
  ModelConfig model;            // random weights of this architecture
  std::int64_t prompt_tokens;   // P, e.g. 620 (576 image tokens + text)
  std::int64_t answers;         // N, e.g. 20
  std::int64_t answer_tokens;   // T of each answer in the training step, e.g. 15
  std::int64_t sampled_tokens;  // G sampled per answer, e.g. 16
  std::string description;      // one line for the report
};

/// tiny (seconds on CPU), small (576 image tokens, about a minute on CPU), 7b (LLaVA-1.5-7B:
/// CLIP ViT-L/14-336 + Vicuna-7B). Throws perpo::Error (input) for another name.
BenchShape bench_shape(const std::string& name);
std::vector<std::string> bench_shape_names();

/// Forward FLOPs of the parts of one step (see the header comment).
struct FlopCount {
  double vision = 0;     // vision tower
  double projector = 0;  // multi-modal projector
  double decoder = 0;    // decoder layers: linear layers + attention
  double lm_head = 0;    // logits
  double total() const { return vision + projector + decoder + lm_head; }
};

/// Vision tower forward on one image: patch embedding + the layers up to vision_feature_layer.
double vision_forward_flops(const ModelConfig& config);
/// Projector forward on one image's Np features.
double projector_forward_flops(const ModelConfig& config);
/// Decoder layers on `tokens` new tokens with `attended_pairs` (query, key) pairs in total.
double decoder_forward_flops(const TextConfig& text, double tokens, double attended_pairs);
/// lm_head on `positions` positions.
double lm_head_flops(const TextConfig& text, double positions);

/// One PerPO training step on one list (forward and backward counted, as described above).
FlopCount train_step_flops(const BenchShape& shape);
/// Sampling N answers of G tokens on one prompt.
FlopCount sampling_flops(const BenchShape& shape);

/// Bytes a training step needs at least: weights in `dtype_bytes`, and for each trained
/// parameter its gradient (same dtype) and AdamW's fp32 moments (+ an fp32 master copy when
/// the weights are not fp32). Activations are not counted.
std::uint64_t train_state_bytes(const ModelConfig& config, int dtype_bytes);

}  // namespace perpo
