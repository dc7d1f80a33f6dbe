#include "perpo/generate/sampler.h"

#include <torch/torch.h>

#include <limits>

#include "perpo/config/config.h"
#include "perpo/core/error.h"

namespace perpo {

namespace {

// splitmix64's finaliser: a bijective mix with full avalanche.
std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace

SamplerOptions SamplerOptions::from(const SamplingConfig& config) {
  SamplerOptions options;
  options.temperature = config.temperature;
  options.top_k = config.top_k;
  options.top_p = config.top_p;
  options.greedy = config.temperature == 0.0;
  return options;
}

void SamplerOptions::validate() const {
  if (greedy) return;
  PERPO_CHECK_INPUT(temperature > 0, "sampling.temperature must be > 0 (or 0 for greedy), got ",
                    temperature);
  PERPO_CHECK_INPUT(top_k >= 0, "sampling.top_k must be >= 0 (0 = off), got ", top_k);
  PERPO_CHECK_INPUT(top_p > 0 && top_p <= 1, "sampling.top_p must be in (0, 1], got ", top_p);
}

std::uint64_t record_seed(std::uint64_t run_seed, std::string_view record_id) {
  return mix64(mix64(run_seed) ^ fnv1a(record_id));
}

std::uint64_t answer_seed(std::uint64_t record_seed, std::int64_t index) {
  return mix64(record_seed ^ mix64(static_cast<std::uint64_t>(index) + 0x5851f42d4c957f2dULL));
}

double uniform_at(std::uint64_t seed, std::int64_t step) {
  const std::uint64_t bits = mix64(seed ^ mix64(~static_cast<std::uint64_t>(step)));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

torch::Tensor select_tokens(const torch::Tensor& logits, const torch::Tensor& uniforms,
                            const SamplerOptions& options) {
  PERPO_CHECK(logits.dim() == 2, "select_tokens expects logits (B, V), got ", logits.sizes());
  if (options.greedy) return logits.argmax(-1);  // (B)
  PERPO_CHECK(uniforms.dim() == 1 && uniforms.size(0) == logits.size(0),
              "select_tokens expects one uniform per row (", logits.size(0), "), got ",
              uniforms.sizes());
  const auto V = logits.size(1);
  torch::Tensor scaled = logits.to(torch::kDouble) / options.temperature;  // (B, V)
  if (options.top_k > 0 && options.top_k < V) {
    torch::Tensor kth =
        std::get<0>(scaled.topk(options.top_k, -1)).narrow(-1, options.top_k - 1, 1);
    scaled = scaled.masked_fill(scaled < kth, -std::numeric_limits<double>::infinity());
  }
  torch::Tensor probs = torch::softmax(scaled, -1);  // (B, V) float64
  torch::Tensor order;                               // (B, V): vocabulary id of each column
  if (options.top_p < 1.0) {
    auto [sorted, indices] = probs.sort(-1, /*descending=*/true);  // (B, V)
    torch::Tensor before = sorted.cumsum(-1) - sorted;             // mass preceding each token
    probs = sorted.masked_fill(before >= options.top_p, 0.0);
    order = indices;
  }
  torch::Tensor cdf = probs.cumsum(-1);  // (B, V)
  torch::Tensor target =
      uniforms.to(cdf.device(), torch::kDouble).unsqueeze(1) * cdf.narrow(-1, V - 1, 1);  // (B, 1)
  // The last token with mass bounds the search (u * total may round up to the total).
  torch::Tensor last_kept =
      (V - 1) - (probs > 0).flip(-1).to(torch::kByte).argmax(-1, /*keepdim=*/true);  // (B, 1)
  torch::Tensor column = torch::minimum(
      torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true), last_kept);  // (B, 1)
  if (order.defined()) column = order.gather(-1, column);
  return column.squeeze(-1);  // (B)
}

}  // namespace perpo
