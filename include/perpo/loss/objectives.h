// The training objectives on preference lists: PerPO and the baselines it is compared with.
//
// Shapes: B lists, N answers per list. Inputs are SUMMED answer log-probs (SequenceLogps::sum);
// with loss.length_normalize the objective divides them by the answer lengths itself.
//
//   s_i = log pi(y_i) - log pi_ref(y_i)            (policy only when loss.reference_free)
//
//   perpo    sum_{r_i > r_j} w_ij softplus(-beta (s_i - s_j)),  w_ij = |r_i - r_j|^gamma / sum
//   ranking  the same with every better pair weighted 1 / #pairs
//   dpo      softplus(-beta (s_best - s_worst))
//   lipo     sum_{r_i > r_j} Delta_ij softplus(-beta (s_i - s_j))   (LiPO-lambda, pair_weights.h)
//   sft      -sum(policy_logps) / sum(answer_tokens): token-mean NLL of the given answers
//
// The batch loss is the mean over ALL B lists, including lists whose rewards are all equal: those
// contribute exactly 0 to the numerator and count in the denominator, as in the authors' code
// (so the gradient scale does not jump with the number of informative lists in a batch).
// metrics.lists_without_signal says how many there were.
//
//   perpo::ListwiseInputs in{policy_logps, ref_logps, rewards};
//   perpo::LossOutput out = perpo::compute_loss(in, config.loss);   // by loss.name
//   out.loss.backward();
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "perpo/config/config.h"

namespace perpo {

/// What an objective reads. Only policy_logps carries gradient.
struct ListwiseInputs {
  at::Tensor policy_logps;   // (B, N) summed answer log-probs under the policy
  at::Tensor ref_logps;      // (B, N) same under the frozen reference; unused if reference_free
  at::Tensor rewards;        // (B, N) reward of each answer; unused by sft (may be undefined)
  at::Tensor answer_tokens;  // (B, N) answer lengths in tokens; for length_normalize and sft
  at::Tensor nll;            // (B,) NLL of each list's SFT target; for nll_weight > 0
};

/// Detached 0-dim tensors (no host sync until you read them), over every pair with r_i > r_j in
/// the batch; all 0 when the batch has no such pair. s is the (length-normalised) log-ratio.
struct LossMetrics {
  at::Tensor pair_accuracy;         // share of those pairs with s_i > s_j (ties in s: wrong)
  at::Tensor mean_margin;           // mean of s_i - s_j
  at::Tensor chosen_logratio;       // mean s_i of the better answer of each pair
  at::Tensor rejected_logratio;     // mean s_j of the worse answer of each pair
  at::Tensor pairs;                 // number of pairs with r_i > r_j (int64)
  at::Tensor lists_without_signal;  // lists whose rewards are all equal (int64)

  /// Reads every metric to the host (synchronises), for logging: {"pair_accuracy": 0.75, ...}.
  std::map<std::string, double> to_map() const;
};

struct LossOutput {
  at::Tensor loss;       // () what to backpropagate: objective + nll_weight * nll term
  at::Tensor objective;  // () the listwise (or sft) objective alone, mean over lists
  at::Tensor per_list;   // (B,) objective of each list (detached)
  at::Tensor nll_term;   // () mean of inputs.nll when nll_weight > 0, else undefined
  LossMetrics metrics;
};

/// s = policy - reference (or policy alone), divided by answer_tokens with length_normalize;
/// (B, N), in at least float32.
at::Tensor implicit_scores(const ListwiseInputs& inputs, const LossConfig& config);

/// Ranking metrics of `scores` under `rewards`, both (B, N).
LossMetrics ranking_metrics(const at::Tensor& scores, const at::Tensor& rewards);

LossOutput perpo_loss(const ListwiseInputs& inputs, const LossConfig& config);
LossOutput ranking_loss(const ListwiseInputs& inputs, const LossConfig& config);
LossOutput dpo_loss(const ListwiseInputs& inputs, const LossConfig& config);
LossOutput lipo_loss(const ListwiseInputs& inputs, const LossConfig& config);
/// Needs policy_logps and answer_tokens only; metrics are computed when rewards are given.
/// nll_weight does not apply (the objective already is the NLL).
LossOutput sft_loss(const ListwiseInputs& inputs, const LossConfig& config);

/// Runs the objective named by config.name (perpo | dpo | lipo | ranking | sft).
/// Throws perpo::Error (input) for an unknown name or invalid settings, with a hint.
LossOutput compute_loss(const ListwiseInputs& inputs, const LossConfig& config);

/// Checks name, beta, gamma and nll_weight; throws perpo::Error (input) with a hint.
void validate_loss_config(const LossConfig& config);

/// True when the objective reads reference log-probs (not sft, not reference_free).
bool loss_needs_reference(const LossConfig& config);

}  // namespace perpo
