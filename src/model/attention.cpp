#include "perpo/model/attention.h"

#include <torch/torch.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "perpo/core/error.h"
#include "perpo/model/kv_cache.h"

namespace perpo {
namespace {
// -1: not chosen yet (PERPO_ATTENTION is read at the first use), else an AttentionImpl.
std::atomic<int> chosen_impl{-1};

AttentionImpl impl_from_environment() {
  const char* value = std::getenv("PERPO_ATTENTION");
  if (value == nullptr || *value == '\0') {
    // Default: SDPA where a CUDA device exists (its flash / memory-efficient kernels are what the
    // GPU path needs); the reference on CPU-only machines, whose figures and trained results
    // (the demo) were measured with it. On CPU SDPA matches it to 1e-5 and measured about as fast
    // (bench_train_step: -4% CPU time; sampling +25% tokens/s).
    return torch::cuda::is_available() ? AttentionImpl::sdpa : AttentionImpl::reference;
  }
  if (std::strcmp(value, "sdpa") == 0) return AttentionImpl::sdpa;
  if (std::strcmp(value, "reference") == 0) return AttentionImpl::reference;
  throw input_error("environment variable PERPO_ATTENTION='", value,
                    "' is not an attention "
                    "implementation")
      .hint("use PERPO_ATTENTION=sdpa (the default) or PERPO_ATTENTION=reference");
}
}  // namespace

AttentionImpl attention_impl() {
  int impl = chosen_impl.load();
  if (impl < 0) {
    impl = static_cast<int>(impl_from_environment());
    chosen_impl.store(impl);
  }
  return static_cast<AttentionImpl>(impl);
}

void set_attention_impl(AttentionImpl impl) { chosen_impl.store(static_cast<int>(impl)); }

void apply_attention_setting(const std::string& setting) {
  if (setting == "auto") return;
  AttentionImpl impl;
  if (setting == "sdpa") {
    impl = AttentionImpl::sdpa;
  } else if (setting == "reference") {
    impl = AttentionImpl::reference;
  } else {
    throw input_error("model.attention is '", setting, "'").hint("use auto, sdpa or reference");
  }
  const char* environment = std::getenv("PERPO_ATTENTION");
  if (environment != nullptr && *environment != '\0') return;  // the environment overrides
  set_attention_impl(impl);
}

KVCache KVCache::appended(const KVCache& newer) const {
  if (empty()) return newer;
  if (newer.empty()) return *this;
  PERPO_CHECK(keys.size() == newer.keys.size(), "KV caches of ", keys.size(), " and ",
              newer.keys.size(), " layers cannot be joined");
  KVCache joined;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    joined.keys.push_back(torch::cat({keys[i], newer.keys[i]}, 2));        // (B, Hkv, S1+S2, D)
    joined.values.push_back(torch::cat({values[i], newer.values[i]}, 2));  // (B, Hkv, S1+S2, D)
  }
  return joined;
}

namespace {
void check_grouping(const torch::Tensor& q, const torch::Tensor& kv, const char* what) {
  PERPO_CHECK(q.dim() == 4 && kv.dim() == 4, "attention expects 4-d tensors, got query ", q.sizes(),
              " and ", what, " ", kv.sizes());
  PERPO_CHECK(kv.size(0) == q.size(0) || kv.size(0) == 1, what, " batch ", kv.size(0),
              " must be 1 or the query batch ", q.size(0));
  PERPO_CHECK(q.size(1) % kv.size(1) == 0, "query heads ", q.size(1),
              " are not a multiple of key/value heads ", kv.size(1));
}
}  // namespace

torch::Tensor grouped_scores(const torch::Tensor& q, const torch::Tensor& k) {
  check_grouping(q, k, "keys");
  const auto B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const auto Hkv = k.size(1), S = k.size(2), group = H / Hkv;
  torch::Tensor q_grouped = q.reshape({B, Hkv, group * T, D});  // (B, Hkv, g*T, D)
  if (k.size(0) == B) {
    return torch::matmul(q_grouped, k.transpose(-1, -2)).view({B, H, T, S});  // (B, H, T, S)
  }
  // Shared keys: fold the batch into the rows so the single key copy is read once.
  torch::Tensor rows =
      q_grouped.transpose(0, 1).reshape({Hkv, B * group * T, D});      // (Hkv, B*g*T, D)
  torch::Tensor scores = torch::matmul(rows, k[0].transpose(-1, -2));  // (Hkv, B*g*T, S)
  return scores.view({Hkv, B, group * T, S}).transpose(0, 1).reshape({B, H, T, S});
}

torch::Tensor grouped_values(const torch::Tensor& probs, const torch::Tensor& v) {
  check_grouping(probs, v, "values");
  const auto B = probs.size(0), H = probs.size(1), T = probs.size(2), S = probs.size(3);
  const auto Hkv = v.size(1), D = v.size(3), group = H / Hkv;
  torch::Tensor p_grouped = probs.reshape({B, Hkv, group * T, S});  // (B, Hkv, g*T, S)
  if (v.size(0) == B) return torch::matmul(p_grouped, v).view({B, H, T, D});
  torch::Tensor rows =
      p_grouped.transpose(0, 1).reshape({Hkv, B * group * T, S});  // (Hkv, B*g*T, S)
  torch::Tensor out = torch::matmul(rows, v[0]);                   // (Hkv, B*g*T, D)
  return out.view({Hkv, B, group * T, D}).transpose(0, 1).reshape({B, H, T, D});
}

torch::Tensor attention_allowed(std::int64_t past_len, std::int64_t new_len,
                                const torch::Tensor& key_mask, const torch::Device& device) {
  auto bool_options = torch::TensorOptions().dtype(torch::kBool).device(device);
  torch::Tensor causal = torch::ones({new_len, new_len}, bool_options).tril();  // (T, T)
  torch::Tensor allowed = causal;
  if (past_len > 0) {
    allowed = torch::cat({torch::ones({new_len, past_len}, bool_options), causal}, 1);  // (T, P+T)
  }
  allowed = allowed.view({1, 1, new_len, past_len + new_len});
  if (key_mask.defined()) {
    PERPO_CHECK(key_mask.dim() == 2 && key_mask.size(1) == past_len + new_len,
                "attention key mask must be (B, ", past_len + new_len, "), got ", key_mask.sizes());
    torch::Tensor keys_real = key_mask.to(device, torch::kBool);  // (B, P+T)
    allowed = allowed & keys_real.view({keys_real.size(0), 1, 1, past_len + new_len});
  }
  return allowed;  // (B or 1, 1, T, P+T)
}

torch::Tensor attention_bias(const torch::Tensor& allowed) {
  PERPO_CHECK(allowed.scalar_type() == torch::kBool, "attention_bias takes a bool mask, got ",
              allowed.scalar_type());
  return torch::zeros(allowed.sizes(), allowed.options().dtype(torch::kFloat))
      .masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest());
}

torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& past_k,
                     const torch::Tensor& past_v, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& allowed, double scale) {
  const bool has_past = past_k.defined() && past_k.size(2) > 0;
  torch::Tensor scores = grouped_scores(q, k);  // (B, H, T, T)
  std::int64_t past_len = 0;
  if (has_past) {
    past_len = past_k.size(2);
    scores = torch::cat({grouped_scores(q, past_k), scores}, -1);  // (B, H, T, P+T)
  }
  scores = (scores * scale).to(torch::kFloat);  // fp32 so the mask value below is representable
  if (allowed.defined() && allowed.is_floating_point()) {
    // attention_bias: + 0 leaves a score as it is, + lowest gives lowest, as masked_fill would;
    // a broadcast add costs a sixth of a broadcast masked_fill and nothing in backward.
    scores = scores + allowed;
  } else if (allowed.defined()) {
    scores = scores.masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest());
  }
  torch::Tensor probs = torch::softmax(scores, -1).to(q.scalar_type());  // (B,H,T,P+T)
  if (!has_past) return grouped_values(probs, v);
  return grouped_values(probs.narrow(-1, 0, past_len), past_v) +
         grouped_values(probs.narrow(-1, past_len, probs.size(-1) - past_len), v);  // (B, H, T, D)
}

}  // namespace perpo
