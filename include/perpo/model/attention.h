// Scaled dot-product attention with grouped-query heads and an optional past (cached) part.
//
// Two implementations compute the same thing:
//   sdpa       at::scaled_dot_product_attention: flash / memory-efficient kernels on
//              CUDA, the flash kernel on CPU; grouped-query heads without copying keys
//              (enable_gqa, or queries folded onto their key/value head where a kernel lacks it).
//   reference  the hand-written path below (attend): fp32 scores materialised, a past shared by
//              the whole batch (batch 1) broadcast by folding queries. The CPU reference and the
//              fallback.
// The choice is process-wide: the config key model.attention (auto | sdpa | reference, applied by
// load_model through apply_attention_setting), set_attention_impl(), or the environment variable
// PERPO_ATTENTION=reference|sdpa, which overrides the config; with neither, sdpa when a CUDA
// device exists and the reference otherwise.
//
// Shape legend: B = batch, H = query heads, Hkv = key/value heads (H % Hkv == 0; query head h
// reads key/value head h / (H / Hkv), as transformers' repeat_kv), T = new tokens, P = past tokens,
// D = head dim.
#pragma once

#include <torch/types.h>

#include <string>

namespace perpo {

enum class AttentionImpl { sdpa, reference };

/// The implementation in use: set_attention_impl's, else PERPO_ATTENTION's, else sdpa with a
/// CUDA device and reference without.
AttentionImpl attention_impl();
void set_attention_impl(AttentionImpl impl);

/// model.attention: "sdpa" or "reference" selects it, unless PERPO_ATTENTION is set (the
/// environment overrides the config); "auto" keeps the current choice. Throws perpo::Error
/// (input) for another value.
void apply_attention_setting(const std::string& setting);

/// Sets the implementation for a scope (tests compare both), restores the previous one after.
class AttentionImplGuard {
 public:
  explicit AttentionImplGuard(AttentionImpl impl) : previous_(attention_impl()) {
    set_attention_impl(impl);
  }
  ~AttentionImplGuard() { set_attention_impl(previous_); }
  AttentionImplGuard(const AttentionImplGuard&) = delete;
  AttentionImplGuard& operator=(const AttentionImplGuard&) = delete;

 private:
  AttentionImpl previous_;
};

/// q (B, H, T, D) . k (Bk, Hkv, S, D)^T -> (B, H, T, S); Bk == B or Bk == 1 (shared keys: the
/// B*T query rows are folded into one matmul against the single copy of the keys).
torch::Tensor grouped_scores(const torch::Tensor& q, const torch::Tensor& k);

/// probs (B, H, T, S) . v (Bk, Hkv, S, D) -> (B, H, T, D); Bk == B or 1 as in grouped_scores.
torch::Tensor grouped_values(const torch::Tensor& probs, const torch::Tensor& v);

/// Which keys each new token may attend to: past keys all (subject to key_mask), new keys up to
/// and including its own position (causal). key_mask: (B, P + T) bool/int, true = real token,
/// or undefined (no padding). Returns (B or 1, 1, T, P + T) bool.
torch::Tensor attention_allowed(std::int64_t past_len, std::int64_t new_len,
                                const torch::Tensor& key_mask, const torch::Device& device);

/// attention_allowed's mask as an additive fp32 one: 0 where allowed, the lowest float where not.
/// Added to fp32 scores it gives what masked_fill(!allowed, lowest) gives, bit for bit, and the
/// same gradient wherever a query row sees at least one key (a row that sees none would get
/// gradient into its uniform scores, which masked_fill gives none).
torch::Tensor attention_bias(const torch::Tensor& allowed);

/// The reference implementation: softmax(q k^T * scale, masked) v over past keys (undefined when
/// none) followed by the new keys. q (B, H, T, D); past_k/v (Bp, Hkv, P, D) with Bp == B or 1;
/// k/v (B, Hkv, T, D); allowed (B or 1, 1, T, P + T) bool, or attention_bias of it (the decoder's
/// form: cheaper), or undefined (attend to everything, e.g. CLIP). Softmax runs in fp32 as in
/// transformers' eager attention. Returns (B, H, T, D). A query row with no allowed key attends
/// uniformly to all keys (as the masked softmax does).
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& past_k,
                     const torch::Tensor& past_v, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& allowed, double scale);

/// at::scaled_dot_product_attention over q (B, H, Sq, D), k/v (B or 1, Hkv, S, D) with a bool
/// mask (B or 1, 1, Sq, S) (true = attend) or undefined, or `causal` (no mask; query i sees keys
/// [0, i]). Grouped-query heads without copying keys: enable_gqa where the kernel supports it,
/// otherwise the g = H / Hkv query heads of a key/value head are folded into its rows (also when
/// `fold_groups` asks for it). Every mask row must allow at least one key (the kernels give NaN
/// otherwise); make_attention_mask sees to it.
torch::Tensor sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                   const torch::Tensor& mask, bool causal, double scale, bool fold_groups = false);

/// Everything one decoder call's layers share about who attends to whom, built once per call
/// (make_attention_mask) for the implementation in use, then read by every layer (attend_layer).
struct AttentionMask {
  AttentionImpl impl = AttentionImpl::sdpa;
  std::int64_t past_len = 0;  // P
  std::int64_t new_len = 0;   // T
  bool shared_past = false;   // a batch-1 past under B > 1 query rows (answers of one prefix)
  bool causal = false;        // sdpa without a mask: no padding, no past
  torch::Tensor allowed;      // reference: (B or 1, 1, T, P + T) bool
  // reference, on the CPU, when every query row sees a key: attention_bias(allowed), which
  // attend_layer then passes instead of `allowed`; else undefined.
  torch::Tensor bias;
  // sdpa: (B or 1, 1, T, P + T) bool; shared past: (1, 1, B*T, P + B*T), the B answers packed in
  // one sequence after the past, each seeing the past and itself causally (a block mask).
  // A row that may see no key (a padding query before any real token) allows all keys instead.
  torch::Tensor sdpa_mask;
  // sdpa with a mask: (B or 1, 1, T, 1) (packed: (1, 1, B*T, 1)) in {0, 1}, 0 on the rows that
  // may see no key. Their queries are zeroed, so they attend uniformly to all keys with no
  // gradient into queries or keys, exactly as the reference's masked softmax does.
  torch::Tensor query_keep;
};

/// past_len P and past_batch (0 when no past; 1 = shared); batch B and new_len T of the queries;
/// key_mask (B, P + T) (true/1 = real token) or undefined.
AttentionMask make_attention_mask(std::int64_t past_len, std::int64_t past_batch,
                                  std::int64_t batch, std::int64_t new_len,
                                  const torch::Tensor& key_mask, const torch::Device& device);

/// One layer's attention under `mask`: q (B, H, T, D), past_k/v (B or 1, Hkv, P, D) or undefined,
/// k/v (B, Hkv, T, D) -> (B, H, T, D). A shared past is never copied per query row: the sdpa path
/// packs the B answers into one sequence over [past; all answers] with the block mask.
torch::Tensor attend_layer(const torch::Tensor& q, const torch::Tensor& past_k,
                           const torch::Tensor& past_v, const torch::Tensor& k,
                           const torch::Tensor& v, const AttentionMask& mask, double scale);

}  // namespace perpo
