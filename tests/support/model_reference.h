// The plain computation that the model's shared-prefix answer log-probs are checked against (tests
// and bench only, not in the perpo binary): the prompt repeated N times, each copy followed by its
// answer, in one forward of (N, P + T) tokens. Same result as VisionLanguageModel::answer_logps, N
// times the prefix work.
//
//   torch::Tensor ref = test::answer_logps_repeated(*model, prompt_ids, pixels, answers, mask);
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "perpo/model/vlm.h"

namespace perpo::test {

/// Logits (B, S, V) of whole sequences through any family's plain forward (vlm.h).
inline torch::Tensor plain_logits(VisionLanguageModel& model, const torch::Tensor& ids,
                                  const ModelImage& images = {},
                                  const torch::Tensor& attention_mask = {}) {
  return model.lm_logits(model.run_prompts(ids, attention_mask, images).hidden);
}

/// prompt_ids (1, P), pixel_values (1, 3, H, W) or undefined, answer_ids / answer_mask (N, T)
/// (right padding) -> per-token log-probs (N, T), 0 where the mask is 0.
inline torch::Tensor answer_logps_repeated(
    VisionLanguageModel& model, const torch::Tensor& prompt_ids, const torch::Tensor& pixel_values,
    const torch::Tensor& answer_ids, const torch::Tensor& answer_mask, std::int64_t chunk = 16) {
  const auto N = answer_ids.size(0), P = prompt_ids.size(1);
  torch::Tensor real = answer_mask.to(torch::kBool);                        // (N, T)
  torch::Tensor targets = answer_ids.masked_fill(real.logical_not(), 0);    // (N, T)
  torch::Tensor ids = torch::cat({prompt_ids.expand({N, P}), targets}, 1);  // (N, P+T)
  torch::Tensor pixels =
      pixel_values.defined() ? pixel_values.expand({N, -1, -1, -1}).contiguous() : torch::Tensor();
  torch::Tensor key_mask = torch::cat({torch::ones({N, P}, real.options()), real}, 1);  // (N, P+T)
  torch::Tensor start = torch::full({N}, P, torch::kInt64);                             // (N)
  return model.sequence_answer_logps(ids, pixels, key_mask, start, answer_mask, chunk);
}

}  // namespace perpo::test
