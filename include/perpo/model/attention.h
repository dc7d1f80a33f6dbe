// Scaled dot-product attention with grouped-query heads and an optional past (cached) part,
// written so that a past shared by the whole batch (batch 1) is broadcast without copying.
//
// Shape legend: B = batch, H = query heads, Hkv = key/value heads (H % Hkv == 0; query head h
// reads key/value head h / (H / Hkv), as transformers' repeat_kv), T = new tokens, P = past tokens,
// D = head dim.
#pragma once

#include <torch/types.h>

namespace perpo {

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

/// softmax(q k^T * scale, masked) v over past keys (undefined when none) followed by the new keys.
/// q (B, H, T, D); past_k/v (Bp, Hkv, P, D) with Bp == B or 1; k/v (B, Hkv, T, D);
/// allowed (B or 1, 1, T, P + T) bool or undefined (attend to everything, e.g. CLIP).
/// Softmax runs in fp32 as in transformers' eager attention. Returns (B, H, T, D).
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& past_k,
                     const torch::Tensor& past_v, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& allowed, double scale);

}  // namespace perpo
