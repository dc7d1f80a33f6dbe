#include "perpo/generate/segment_cache.h"

#include <torch/torch.h>

#include <limits>
#include <numeric>

#include "perpo/core/error.h"
#include "perpo/model/attention.h"

namespace perpo {

SegmentedKVCache::SegmentedKVCache(KVCache prefix, torch::Tensor prefix_mask,
                                   std::vector<std::int64_t> row_counts, std::int64_t capacity)
    : prefix_(std::move(prefix)),
      // In the form the attention reads (grouped_segment_attention): the bias for the reference.
      prefix_mask_(attention_impl() == AttentionImpl::sdpa
                       ? prefix_mask.to(torch::kBool)
                       : attention_bias(prefix_mask.to(torch::kBool))),
      row_counts_(std::move(row_counts)),
      capacity_(capacity) {
  PERPO_CHECK(!prefix_.empty(), "a segmented cache needs the prompts' keys/values");
  const auto R = prefix_.batch(), P = prefix_.length();
  PERPO_CHECK(prefix_mask_.dim() == 2 && prefix_mask_.size(0) == R && prefix_mask_.size(1) == P,
              "prefix mask must be (", R, ", ", P, "), got ", prefix_mask_.sizes());
  PERPO_CHECK(static_cast<std::int64_t>(row_counts_.size()) == R, "row counts for ",
              row_counts_.size(), " prompts, the cache holds ", R);
  rows_ = std::accumulate(row_counts_.begin(), row_counts_.end(), std::int64_t{0});
  PERPO_CHECK(capacity_ >= 0 && rows_ > 0, "a segmented cache needs rows and capacity >= 0");
  for (std::size_t i = 0; i < prefix_.keys.size(); ++i) {
    const torch::Tensor& k = prefix_.keys[i];  // (R, Hkv, P, D)
    row_keys_.push_back(torch::empty({rows_, k.size(1), capacity_, k.size(3)}, k.options()));
    row_values_.push_back(torch::empty({rows_, k.size(1), capacity_, k.size(3)}, k.options()));
  }
}

std::vector<std::int64_t> SegmentedKVCache::row_records() const {
  std::vector<std::int64_t> records;
  records.reserve(rows_);
  for (std::size_t r = 0; r < row_counts_.size(); ++r) {
    records.insert(records.end(), row_counts_[r], static_cast<std::int64_t>(r));
  }
  return records;
}

torch::Tensor SegmentedKVCache::attend_step(std::size_t layer, const torch::Tensor& q,
                                            const torch::Tensor& k, const torch::Tensor& v,
                                            double scale) {
  PERPO_CHECK(q.size(0) == rows_ && q.size(2) == 1 && k.size(2) == 1,
              "a decoding step takes one token for each of the ", rows_, " rows, got ", q.sizes());
  PERPO_CHECK(length_ < capacity_, "row buffers are full (", capacity_, " tokens)");
  row_keys_[layer].select(2, length_).copy_(k.select(2, 0));            // (B, Hkv, D)
  row_values_[layer].select(2, length_).copy_(v.select(2, 0));          // (B, Hkv, D)
  torch::Tensor keys = row_keys_[layer].narrow(2, 0, length_ + 1);      // (B, Hkv, t+1, D)
  torch::Tensor values = row_values_[layer].narrow(2, 0, length_ + 1);  // (B, Hkv, t+1, D)
  const torch::Tensor& prefix_k = prefix_.keys[layer];                  // (R, Hkv, P, D)
  const torch::Tensor& prefix_v = prefix_.values[layer];

  const auto R = static_cast<std::int64_t>(row_counts_.size());
  const bool uniform = std::all_of(row_counts_.begin(), row_counts_.end(),
                                   [&](std::int64_t c) { return c == row_counts_[0]; });
  if (uniform) {
    return grouped_segment_attention(q, prefix_k, prefix_v, prefix_mask_, keys, values, scale);
  }
  std::vector<torch::Tensor> pieces;
  std::int64_t start = 0;
  for (std::int64_t r = 0; r < R; ++r) {
    const auto count = row_counts_[r];
    if (count == 0) continue;
    pieces.push_back(grouped_segment_attention(
        q.narrow(0, start, count), prefix_k.narrow(0, r, 1), prefix_v.narrow(0, r, 1),
        prefix_mask_.narrow(0, r, 1), keys.narrow(0, start, count), values.narrow(0, start, count),
        scale));
    start += count;
  }
  return torch::cat(pieces, 0);  // (B, H, 1, D)
}

void SegmentedKVCache::advance() { ++length_; }

void SegmentedKVCache::keep_rows(const std::vector<std::int64_t>& keep) {
  std::vector<std::int64_t> records = row_records();
  std::vector<std::int64_t> counts(row_counts_.size(), 0);
  for (std::size_t i = 0; i < keep.size(); ++i) {
    PERPO_CHECK(keep[i] >= 0 && keep[i] < rows_ && (i == 0 || keep[i] > keep[i - 1]),
                "keep_rows needs ascending row indices below ", rows_);
    ++counts[records[keep[i]]];
  }
  PERPO_CHECK(!keep.empty(), "keep_rows must keep at least one row");
  torch::Tensor index = torch::tensor(keep, torch::kInt64).to(row_keys_[0].device());
  for (std::size_t i = 0; i < row_keys_.size(); ++i) {
    row_keys_[i] = row_keys_[i].index_select(0, index);      // (B', Hkv, L, D)
    row_values_[i] = row_values_[i].index_select(0, index);  // (B', Hkv, L, D)
  }
  row_counts_ = std::move(counts);
  rows_ = static_cast<std::int64_t>(keep.size());
}

namespace {

/// The SDPA form: a record's N rows packed into one query sequence over [its prompt; the N rows'
/// keys], with a mask that lets each row see the real prompt keys and its own L keys. The prompt
/// keys are joined once per record and layer (not once per row).
torch::Tensor packed_segment_attention(const torch::Tensor& q, const torch::Tensor& prefix_k,
                                       const torch::Tensor& prefix_v,
                                       const torch::Tensor& prefix_mask, const torch::Tensor& row_k,
                                       const torch::Tensor& row_v, double scale) {
  const auto B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const auto R = prefix_k.size(0), Hkv = prefix_k.size(1), P = prefix_k.size(2);
  const auto L = row_k.size(2), N = B / R;
  torch::Tensor packed_q =
      q.view({R, N, H, T, D}).transpose(1, 2).reshape({R, H, N * T, D});  // (R, H, N*T, D)
  auto join = [&](const torch::Tensor& prefix, const torch::Tensor& rows) {
    torch::Tensor own = rows.view({R, N, Hkv, L, D}).transpose(1, 2).reshape({R, Hkv, N * L, D});
    return torch::cat({prefix, own}, 2);  // (R, Hkv, P + N*L, D)
  };
  auto bool_options = torch::TensorOptions().dtype(torch::kBool).device(q.device());
  torch::Tensor to_prompt = prefix_mask.view({R, 1, 1, P}).expand({R, 1, N * T, P});  // (R,1,NT,P)
  torch::Tensor to_rows = torch::eye(N, bool_options)
                              .view({1, 1, N, 1, N, 1})
                              .expand({R, 1, N, T, N, L})
                              .reshape({R, 1, N * T, N * L});  // (R, 1, N*T, N*L): own row only
  torch::Tensor mask = torch::cat({to_prompt, to_rows}, -1);   // (R, 1, N*T, P + N*L)
  torch::Tensor out = sdpa(packed_q, join(prefix_k, row_k), join(prefix_v, row_v), mask,
                           /*causal=*/false, scale);  // (R, H, N*T, D)
  return out.view({R, H, N, T, D}).transpose(1, 2).reshape({B, H, T, D});
}

}  // namespace

torch::Tensor grouped_segment_attention(const torch::Tensor& q, const torch::Tensor& prefix_k,
                                        const torch::Tensor& prefix_v,
                                        const torch::Tensor& prefix_mask,
                                        const torch::Tensor& row_k, const torch::Tensor& row_v,
                                        double scale) {
  const auto B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const auto R = prefix_k.size(0), Hkv = prefix_k.size(1), P = prefix_k.size(2);
  const auto L = row_k.size(2);
  PERPO_CHECK(R > 0 && B % R == 0 && H % Hkv == 0 && row_k.size(0) == B, "grouped attention: ", B,
              " query rows, ", R, " prompts, ", row_k.size(0), " row caches, ", H,
              " query heads on ", Hkv, " key/value heads");
  if (attention_impl() == AttentionImpl::sdpa) {
    const torch::Tensor real = prefix_mask.is_floating_point() ? prefix_mask.eq(0) : prefix_mask;
    return packed_segment_attention(q, prefix_k, prefix_v, real, row_k, row_v, scale);
  }
  const auto N = B / R, G = (H / Hkv) * T;  // G: query rows per key/value head of one answer row

  // Prompt segment: the N rows of a record read its single copy of the keys.
  torch::Tensor q_rows = q.reshape({R, N, Hkv, G, D});  // (R, N, Hkv, G, D), a view
  torch::Tensor q_by_head = q_rows.transpose(1, 2).reshape({R, Hkv, N * G, D});  // (R,Hkv,N*G,D)
  torch::Tensor prefix_scores =
      torch::matmul(q_by_head, prefix_k.transpose(-1, -2)).to(torch::kFloat);  // (R,Hkv,N*G,P)
  if (prefix_mask.is_floating_point()) {  // + 0 keeps a score, + lowest gives lowest: as below
    prefix_scores = prefix_scores + prefix_mask.view({R, 1, 1, P});
  } else {
    prefix_scores = prefix_scores.masked_fill(prefix_mask.logical_not().view({R, 1, 1, P}),
                                              std::numeric_limits<float>::lowest());
  }
  prefix_scores = prefix_scores.view({R, Hkv, N, G, P}).transpose(1, 2);  // (R, N, Hkv, G, P)
  // Row segment: each row its own keys.
  torch::Tensor row_scores =
      torch::matmul(q_rows, row_k.reshape({R, N, Hkv, L, D}).transpose(-1, -2))
          .to(torch::kFloat);  // (R, N, Hkv, G, L)

  torch::Tensor scores = torch::cat({prefix_scores * scale, row_scores * scale}, -1);
  torch::Tensor probs = torch::softmax(scores, -1).to(q.scalar_type());  // (R, N, Hkv, G, P+L)

  torch::Tensor prefix_probs =
      probs.narrow(-1, 0, P).transpose(1, 2).reshape({R, Hkv, N * G, P});  // (R, Hkv, N*G, P)
  torch::Tensor from_prefix = torch::matmul(prefix_probs, prefix_v)
                                  .view({R, Hkv, N, G, D})
                                  .transpose(1, 2);  // (R, N, Hkv, G, D)
  torch::Tensor from_rows =
      torch::matmul(probs.narrow(-1, P, L), row_v.reshape({R, N, Hkv, L, D}));  // (R, N, Hkv, G, D)
  return (from_prefix + from_rows).reshape({B, H, T, D});
}

}  // namespace perpo
