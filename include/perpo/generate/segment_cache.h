// The key/value cache of batched decoding, in two segments per layer:
//
//   prefix  (R, Hkv, P, D)    keys/values of R prompts (image + text), right-padded to the
//                             longest P; computed once, never copied: every answer row reads its
//                             record's prompt from here
//   rows    (B, Hkv, L, D)    one preallocated buffer per answer row, L = capacity (the longest
//                             answer); step t writes column t in place, attention reads columns
//                             [0, t] as a view
//
// Rows are grouped by record: rows [start_r, start_r + count_r) continue prompt r. With the same
// count for every record the prompt attention is one batched matmul per layer (queries of a
// record's N rows folded against its single copy of the keys); otherwise one matmul per record.
//
// Shape legend: R = prompts (records), N = rows per record, B = rows, H = query heads,
// Hkv = key/value heads (g = H / Hkv), P = longest prompt, L = row capacity, D = head dim.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "perpo/model/kv_cache.h"

namespace perpo {

class SegmentedKVCache {
 public:
  /// `prefix`: per layer (R, Hkv, P, D), padding columns marked false in `prefix_mask` (R, P).
  /// `row_counts[r]`: rows continuing prompt r (>= 0). `capacity`: tokens each row may append.
  SegmentedKVCache(KVCache prefix, torch::Tensor prefix_mask, std::vector<std::int64_t> row_counts,
                   std::int64_t capacity);

  /// Attention of layer `layer` for one new token per row: writes k, v (B, Hkv, 1, D) at column
  /// length() of the row buffers, then attends q (B, H, 1, D) over the row's prompt and its
  /// columns [0, length()]. Returns (B, H, 1, D). Call advance() after the last layer.
  torch::Tensor attend_step(std::size_t layer, const torch::Tensor& q, const torch::Tensor& k,
                            const torch::Tensor& v, double scale);
  /// The step's tokens are in: the rows hold one more token.
  void advance();

  /// Keeps only rows `keep` (ascending indices into the current rows): the row buffers are
  /// gathered once (copies of the rows kept), the prompt segment is untouched.
  void keep_rows(const std::vector<std::int64_t>& keep);

  std::int64_t rows() const { return rows_; }
  std::int64_t length() const { return length_; }
  std::int64_t capacity() const { return capacity_; }
  const std::vector<std::int64_t>& row_counts() const { return row_counts_; }
  /// Record (prompt index) of each current row.
  std::vector<std::int64_t> row_records() const;

 private:
  KVCache prefix_;
  torch::Tensor prefix_mask_;  // (R, P): the prompts' mask (sdpa) or its attention_bias, once
  std::vector<std::int64_t> row_counts_;
  std::vector<torch::Tensor> row_keys_, row_values_;  // per layer (B, Hkv, L, D)
  std::int64_t rows_ = 0;
  std::int64_t length_ = 0;
  std::int64_t capacity_ = 0;
};

/// Attention of rows grouped by record over their prompt segment and their own keys:
/// q (R*N, H, T, D); prefix_k/v (R, Hkv, P, D); prefix_mask (R, P) bool (true = real) or its
/// attention_bias (attention.h: fp32, 0 = real, lowest = padding; the same result, cheaper);
/// row_k/v (R*N, Hkv, L, D), every row attends to all its L keys (the caller passes the columns
/// written so far). Softmax in fp32 over the P + L keys. Returns (R*N, H, T, D).
/// With the sdpa attention implementation (attention.h) a record's N rows are packed into one
/// at::scaled_dot_product_attention call over [prompt; the rows' keys] with a block mask; the
/// reference computes the prompt and row scores by folded matmuls.
torch::Tensor grouped_segment_attention(const torch::Tensor& q, const torch::Tensor& prefix_k,
                                        const torch::Tensor& prefix_v,
                                        const torch::Tensor& prefix_mask,
                                        const torch::Tensor& row_k, const torch::Tensor& row_v,
                                        double scale);

}  // namespace perpo
