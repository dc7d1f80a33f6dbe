// The at::scaled_dot_product_attention path of attention.h: the kernel call with grouped-query
// heads, the per-call masks (built once, read by every layer) and the packed shared-prefix layout.
#include <torch/torch.h>
#include <torch/version.h>

#include "perpo/core/error.h"
#include "perpo/model/attention.h"

// enable_gqa arrived in LibTorch 2.5; older ones fold the query heads instead.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
#define PERPO_SDPA_HAS_GQA 1
#else
#define PERPO_SDPA_HAS_GQA 0
#endif

namespace perpo {
namespace {

/// Fills mask.sdpa_mask and mask.query_keep from `allowed` (..., Sq, S): a row with no allowed
/// key gets all keys and a zeroed query, i.e. uniform weights as the reference's masked softmax
/// (all scores equal the fill value) gives; the kernels would return NaN there, which would leak
/// into gradients.
void set_dense_mask(AttentionMask& mask, const torch::Tensor& allowed) {
  torch::Tensor has_key = allowed.any(-1, /*keepdim=*/true);  // (..., Sq, 1)
  mask.sdpa_mask = allowed | has_key.logical_not();           // (..., Sq, S)
  mask.query_keep = has_key;
}

torch::Tensor call_sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask, bool causal, double scale, bool gqa) {
  std::optional<torch::Tensor> attn_mask;
  if (mask.defined()) attn_mask = mask;
#if PERPO_SDPA_HAS_GQA
  return at::scaled_dot_product_attention(q, k, v, attn_mask, 0.0, causal, scale, gqa);
#else
  PERPO_CHECK(!gqa, "this LibTorch has no grouped-query SDPA");
  return at::scaled_dot_product_attention(q, k, v, attn_mask, 0.0, causal, scale);
#endif
}

}  // namespace

torch::Tensor sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                   const torch::Tensor& mask, bool causal, double scale, bool fold_groups) {
  PERPO_CHECK(q.dim() == 4 && k.dim() == 4 && v.sizes() == k.sizes(),
              "attention expects q (B, H, Sq, D) and k, v (B, Hkv, S, D), got ", q.sizes(), ", ",
              k.sizes(), ", ", v.sizes());
  PERPO_CHECK(k.size(0) == q.size(0) || k.size(0) == 1, "key batch ", k.size(0),
              " must be 1 or the query batch ", q.size(0));
  PERPO_CHECK(q.size(1) % k.size(1) == 0, "query heads ", q.size(1),
              " are not a multiple of key/value heads ", k.size(1));
  const auto B = q.size(0), H = q.size(1), Sq = q.size(2), D = q.size(3);
  const auto Hkv = k.size(1), S = k.size(2), group = H / Hkv;
  torch::Tensor keys = k.expand({B, Hkv, S, D}), values = v.expand({B, Hkv, S, D});
  if (group == 1) return call_sdpa(q, keys, values, mask, causal, scale, false);
  // The memory-efficient CUDA kernel (the one that takes a mask) has no grouped-query support;
  // SDPA would fall back to its math path and repeat the keys.
  const bool fold = fold_groups || !PERPO_SDPA_HAS_GQA || (q.is_cuda() && (mask.defined()));
  if (!fold) return call_sdpa(q, keys, values, mask, causal, scale, true);
  // Fold: the g query heads of key/value head j become g*Sq rows of one head j.
  torch::Tensor folded_mask = mask;
  if (causal) {
    folded_mask = torch::ones({Sq, S}, q.options().dtype(torch::kBool)).tril(S - Sq);  // (Sq, S)
  }
  if (folded_mask.defined()) {
    folded_mask = folded_mask.view({-1, 1, Sq, S});  // (Bm, 1, Sq, S)
    folded_mask = folded_mask.expand({folded_mask.size(0), group, Sq, S})
                      .reshape({folded_mask.size(0), 1, group * Sq, S});  // (Bm, 1, g*Sq, S)
  }
  torch::Tensor rows = q.reshape({B, Hkv, group * Sq, D});  // (B, Hkv, g*Sq, D)
  torch::Tensor out = call_sdpa(rows, keys, values, folded_mask, false, scale, false);
  return out.view({B, H, Sq, D});  // (B, H, Sq, D)
}

AttentionMask make_attention_mask(std::int64_t past_len, std::int64_t past_batch,
                                  std::int64_t batch, std::int64_t new_len,
                                  const torch::Tensor& key_mask, const torch::Device& device) {
  AttentionMask mask;
  mask.impl = attention_impl();
  mask.past_len = past_len;
  mask.new_len = new_len;
  mask.shared_past = past_len > 0 && past_batch == 1 && batch > 1;
  if (mask.impl == AttentionImpl::reference) {
    mask.allowed = attention_allowed(past_len, new_len, key_mask, device);
    // The additive form (built once per decoder call, added per layer) where every query row
    // sees a key: its gradient at the masked keys is then exactly 0, as masked_fill's. A row
    // that sees none (left padding) would pass gradient into its uniform scores: masked_fill
    // there. On the CPU the check costs no synchronisation; elsewhere masked_fill stays.
    if (mask.allowed.is_cpu() && mask.allowed.any(-1).all().item<bool>()) {
      mask.bias = attention_bias(mask.allowed);
    }
    return mask;
  }
  if (!key_mask.defined() && past_len == 0) {
    mask.causal = true;  // the kernels' own causal masking, no mask tensor
    return mask;
  }
  if (!key_mask.defined() && !mask.shared_past && new_len == 1) return mask;       // sees every key
  torch::Tensor allowed = attention_allowed(past_len, new_len, key_mask, device);  // (B|1,1,T,P+T)
  if (!mask.shared_past) {
    set_dense_mask(mask, allowed);
    return mask;
  }
  // Packed: answer n's rows [n*T, (n+1)*T) see the past (as key_mask says) and, among the B*T
  // packed answer keys, only their own answer's, causally.
  const auto B = batch, T = new_len, P = past_len;
  allowed = allowed.expand({B, 1, T, P + T});
  torch::Tensor to_past = allowed.narrow(-1, 0, P).reshape({B * T, P});  // (B*T, P)
  torch::Tensor own = allowed.narrow(-1, P, T).reshape({B, T, 1, T});    // (B, T, 1, T)
  torch::Tensor same = torch::eye(B, torch::TensorOptions().dtype(torch::kBool).device(device))
                           .view({B, 1, B, 1});                     // (B, 1, B, 1)
  torch::Tensor to_answers = (same & own).reshape({B * T, B * T});  // (B*T, B*T)
  set_dense_mask(mask, torch::cat({to_past, to_answers}, 1).view({1, 1, B * T, P + B * T}));
  return mask;
}

namespace {

/// The sdpa path of attend_layer for queries already cleared by mask.query_keep.
torch::Tensor attend_sdpa(const torch::Tensor& q, const torch::Tensor& past_k,
                          const torch::Tensor& past_v, const torch::Tensor& k,
                          const torch::Tensor& v, const AttentionMask& mask, double scale) {
  const bool has_past = past_k.defined() && past_k.size(2) > 0;
  PERPO_CHECK(has_past == (mask.past_len > 0) && k.size(2) == mask.new_len,
              "attention mask made for ", mask.past_len, " past and ", mask.new_len,
              " new tokens, called with ", has_past ? past_k.size(2) : 0, " and ", k.size(2));
  if (!has_past) return sdpa(q, k, v, mask.sdpa_mask, mask.causal, scale);
  if (!mask.shared_past) {
    const auto B = k.size(0);
    torch::Tensor keys = torch::cat({past_k.expand({B, -1, -1, -1}), k}, 2);    // (B, Hkv, P+T, D)
    torch::Tensor values = torch::cat({past_v.expand({B, -1, -1, -1}), v}, 2);  // (B, Hkv, P+T, D)
    return sdpa(q, keys, values, mask.sdpa_mask, false, scale);
  }
  // The B answers as one sequence after the single copy of the past; the past is read once.
  const auto B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), Hkv = k.size(1);
  torch::Tensor packed_q = q.transpose(0, 1).reshape({1, H, B * T, D});  // (1, H, B*T, D)
  torch::Tensor keys =
      torch::cat({past_k, k.transpose(0, 1).reshape({1, Hkv, B * T, D})}, 2);  // (1,Hkv,P+B*T,D)
  torch::Tensor values =
      torch::cat({past_v, v.transpose(0, 1).reshape({1, Hkv, B * T, D})}, 2);  // (1,Hkv,P+B*T,D)
  torch::Tensor out = sdpa(packed_q, keys, values, mask.sdpa_mask, false, scale);  // (1,H,B*T,D)
  return out.view({H, B, T, D}).transpose(0, 1);                                   // (B, H, T, D)
}
}  // namespace

torch::Tensor attend_layer(const torch::Tensor& q, const torch::Tensor& past_k,
                           const torch::Tensor& past_v, const torch::Tensor& k,
                           const torch::Tensor& v, const AttentionMask& mask, double scale) {
  if (mask.impl == AttentionImpl::reference) {
    return attend(q, past_k, past_v, k, v, mask.bias.defined() ? mask.bias : mask.allowed, scale);
  }
  if (mask.query_keep.defined()) {
    torch::Tensor keep = mask.query_keep.to(q.scalar_type());  // (B|1, 1, T, 1) or packed
    if (mask.shared_past) {
      const auto B = q.size(0), T = q.size(2);
      keep = keep.view({B, 1, T, 1});  // packed rows n*T + t back to (answer n, token t)
    }
    return attend_sdpa(q * keep, past_k, past_v, k, v, mask, scale);
  }
  return attend_sdpa(q, past_k, past_v, k, v, mask, scale);
}

}  // namespace perpo
