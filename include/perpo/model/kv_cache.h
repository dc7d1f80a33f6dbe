// Keys and values of the decoder's attention layers, kept so that later tokens can attend to
// earlier ones without recomputing them (incremental decoding, prefix sharing).
#pragma once

#include <torch/types.h>

#include <vector>

namespace perpo {

/// Per decoder layer: keys (B, Hkv, S, D) after rotary embedding, values (B, Hkv, S, D).
/// B may be 1 for a prefix shared by a batch of continuations (broadcast, never copied).
/// The tensors keep their autograd history, so gradients flow back into whoever made them.
struct KVCache {
  std::vector<torch::Tensor> keys;
  std::vector<torch::Tensor> values;

  bool empty() const { return keys.empty(); }
  /// Tokens held (S); 0 when empty.
  std::int64_t length() const { return keys.empty() ? 0 : keys[0].size(2); }
  /// Batch of the cached sequences (B); 0 when empty.
  std::int64_t batch() const { return keys.empty() ? 0 : keys[0].size(0); }
  /// This cache followed by `newer` along the sequence (incremental decoding: cache = cache +
  /// the step's keys/values). Either side may be empty.
  KVCache appended(const KVCache& newer) const;
};

}  // namespace perpo
