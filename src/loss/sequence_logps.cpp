// Token and sequence log-probs from logits (the chunked hidden -> log-prob path is the model
// module's, perpo/model/token_logps.h).
#include "perpo/loss/sequence_logps.h"

#include <torch/torch.h>

#include "perpo/core/error.h"
#include "perpo/model/token_logps.h"

namespace perpo {

at::Tensor token_logps(const at::Tensor& logits, const at::Tensor& targets) {
  return token_logps_from_logits(logits, targets);  // (B, T)
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
