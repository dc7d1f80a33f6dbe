// Summed log-probs of a list's answers under a model, through the prefix-sharing forward: the
// prompt (image + text) runs once, the N answers run on its keys/values
// (VisionLanguageModel::answer_logps). `perpo sample` (ref_logps of fresh lists, on the keys/values
// the answers were sampled from) and `perpo logps` (lists made elsewhere) both call this, so the
// two give the same numbers.
#pragma once

#include <torch/types.h>

#include <vector>

#include "perpo/data/examples.h"
#include "perpo/model/vlm.h"

namespace perpo {

/// log p(answer_i | prompt, image) summed over the answer's tokens (EOS included), one per
/// answer, under no-grad in eval mode. `image`: the prompt's in its family's form (vlm.h; LLaVA
/// pixel values (3, H, W)), or undefined for a text-only prompt.
/// Answers are scored `chunk` at a time (bounds memory for long lists).
std::vector<double> list_logps(VisionLanguageModel& model, const ListExample& example,
                               const ModelImage& image, int chunk = 32);

/// The same for answers continuing a prompt already run: `prefix` from encode_prefix, or
/// prompt_prefix (generator.h) of the prompts the answers were sampled from (`perpo sample`).
std::vector<double> list_logps(VisionLanguageModel& model, const PrefixState& prefix,
                               const std::vector<std::vector<int>>& answer_ids, int chunk = 32);

/// Both at once from one scoring pass: the sums above and each answer's token log-probs (one row
/// per answer, as long as its ids); `perpo sample` with sampling.token_logps.
struct AnswerLogps {
  std::vector<double> sums;                 // N, equal to list_logps'
  std::vector<std::vector<double>> tokens;  // N rows
};
AnswerLogps answer_token_logps(VisionLanguageModel& model, const PrefixState& prefix,
                               const std::vector<std::vector<int>>& answer_ids, int chunk = 32);

}  // namespace perpo
