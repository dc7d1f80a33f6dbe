// Token and sequence log-probs from logits (the chunked hidden -> log-prob path is the model
// module's, perpo/model/token_logps.h).
#include "perpo/loss/sequence_logps.h"

#include <torch/torch.h>

#include "perpo/core/error.h"

namespace perpo {
namespace {

/// Log-softmax arithmetic runs in double for double inputs and in float32 otherwise.
at::ScalarType compute_dtype(at::ScalarType dtype) {
  return dtype == at::kDouble ? at::kDouble : at::kFloat;
}

/// Targets outside [0, vocab) (ignore ids such as -100, pads beyond V) become 0 so gather is safe.
at::Tensor safe_targets(const at::Tensor& targets, std::int64_t vocab) {
  PERPO_CHECK(!at::isFloatingType(targets.scalar_type()) && targets.scalar_type() != at::kBool,
              "targets must hold integer token ids, got dtype ", targets.scalar_type());
  auto ids = targets.to(at::kLong);
  return torch::where((ids >= 0) & (ids < vocab), ids, torch::zeros_like(ids));
}

/// log p(target) for logits (..., V) -> (...), in the compute dtype.
at::Tensor chunk_logps(const at::Tensor& logits, const at::Tensor& ids) {
  auto log_norm = logits.logsumexp(-1);                            // (...)
  auto picked = logits.gather(-1, ids.unsqueeze(-1)).squeeze(-1);  // (...)
  return picked - log_norm;
}

}  // namespace

at::Tensor token_logps(const at::Tensor& logits, const at::Tensor& targets) {
  PERPO_CHECK(logits.dim() >= 2, "token_logps: logits must be (..., V), got ", logits.sizes());
  PERPO_CHECK(targets.sizes() == logits.sizes().slice(0, logits.dim() - 1), "token_logps: targets ",
              targets.sizes(), " must match logits ", logits.sizes(),
              " without the vocabulary dimension");
  auto ids = safe_targets(targets, logits.size(-1));
  return chunk_logps(logits.to(compute_dtype(logits.scalar_type())), ids);  // (B, T)
}

SequenceLogps reduce_token_logps(const at::Tensor& token_logps, const at::Tensor& mask) {
  PERPO_CHECK(token_logps.sizes() == mask.sizes(), "reduce_token_logps: mask ", mask.sizes(),
              " must have the shape of the token log-probs ", token_logps.sizes());
  auto keep = mask.to(at::kBool);                                               // (B, T)
  auto kept = torch::where(keep, token_logps, torch::zeros_like(token_logps));  // (B, T)
  SequenceLogps out;
  out.sum = kept.sum(-1);                                   // (B,)
  out.tokens = keep.sum(-1).to(token_logps.scalar_type());  // (B,)
  out.mean = out.sum / out.tokens.clamp_min(1);             // (B,)
  return out;
}

SequenceLogps sequence_logps(const at::Tensor& logits, const at::Tensor& targets,
                             const at::Tensor& mask) {
  return reduce_token_logps(token_logps(logits, targets), mask);
}

at::Tensor masked_token_nll(const at::Tensor& token_logps, const at::Tensor& mask) {
  PERPO_CHECK(token_logps.sizes() == mask.sizes(), "masked_token_nll: mask ", mask.sizes(),
              " must have the shape of the token log-probs ", token_logps.sizes());
  auto keep = mask.to(at::kBool);
  auto kept = torch::where(keep, token_logps, torch::zeros_like(token_logps));
  auto count = keep.sum().to(token_logps.scalar_type()).clamp_min(1);
  return -kept.sum() / count;
}

}  // namespace perpo
