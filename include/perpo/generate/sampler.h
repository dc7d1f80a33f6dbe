// Choosing the next token from logits: greedy, or sampling with temperature, top-k and top-p
// (nucleus), each row driven by its own counter-based random stream.
//
// Shape legend: B = rows (answers being decoded), V = vocabulary.
//
// Randomness is a pure function of (seed, step): row b at decoding step t draws
//   u = uniform_at(seed_b, t)   in [0, 1)
// and takes the token where the cumulative distribution first exceeds u. A row's seed comes from
// run.seed, the record id and the answer's index (record_seed, answer_seed), so an answer never
// depends on which other records or answers share its batch, nor on where a run was resumed.
//
//   perpo::SamplerOptions sampler = perpo::SamplerOptions::from(config.sampling);
//   std::uint64_t seed = perpo::answer_seed(perpo::record_seed(42, "refcoco-val-17"), 3);
//   torch::Tensor next = perpo::select_tokens(logits, uniforms, sampler);   // (B) int64
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string_view>

namespace perpo {

struct SamplingConfig;  // perpo/config/config.h

struct SamplerOptions {
  bool greedy = false;       // argmax (ties: the lowest id, as torch.argmax); others ignored
  double temperature = 1.0;  // logits / temperature, > 0
  int top_k = 0;             // keep the k largest logits; 0 = all
  double top_p = 1.0;        // keep the smallest most-likely set with mass >= top_p; 1 = all

  static SamplerOptions from(const SamplingConfig& config);
  static SamplerOptions greedy_decoding() { return SamplerOptions{.greedy = true}; }
  /// Throws perpo::Error (input) naming the sampling.* key of a value out of range.
  void validate() const;
};

/// Seed of a record's answers: a hash of the run seed and the record id.
std::uint64_t record_seed(std::uint64_t run_seed, std::string_view record_id);
/// Seed of answer `index` (0, 1, ...) of a record.
std::uint64_t answer_seed(std::uint64_t record_seed, std::int64_t index);
/// The uniform draw in [0, 1) of the stream `seed` at decoding step `step` (53 random bits).
double uniform_at(std::uint64_t seed, std::int64_t step);

/// Next tokens: logits (B, V) any float dtype, uniforms (B) float64 on the logits' device
/// (ignored when greedy) -> (B) int64 on the logits' device.
/// Sampling: logits / temperature; top-k keeps logits >= the k-th largest (ties kept, as
/// transformers' TopKLogitsWarper); top-p keeps, in descending order of probability, each token
/// whose preceding mass is < top_p (transformers' TopPLogitsWarper); the token is where the
/// cumulative kept mass (in float64) first exceeds u times the total.
torch::Tensor select_tokens(const torch::Tensor& logits, const torch::Tensor& uniforms,
                            const SamplerOptions& options);

}  // namespace perpo
