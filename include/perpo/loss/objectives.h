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
//   grpo     group-relative policy gradient on per-token log-probs (below)
//
// The batch loss is the mean over ALL B lists, including lists whose rewards are all equal: those
// contribute exactly 0 to the numerator and count in the denominator, as in the authors' code
// (so the gradient scale does not jump with the number of informative lists in a batch).
// metrics.lists_without_signal says how many there were.
//
// loss.name grpo (loss.grpo.*) reads the answers token by token: token_logps (B, N, A) with
// token_mask, A the longest answer. Per list, with rewards r (N) and tokens t of answer i:
//
//   rho_it = exp(logp_it - old_it)      old = the sampling policy's token log-probs
//                                        (undefined: the policy's own, detached, so rho = 1)
//   l_it   = -min(rho_it A_i, clip(rho_it, 1 - eps_low, 1 + eps_high) A_i)
//            + kl_beta (exp(ref_it - logp_it) - (ref_it - logp_it) - 1)    (k3 KL estimator)
//
//   variant grpo     A_i = (r_i - mean r) / (std r + std_eps), std with N - 1 (unbiased);
//                    list loss = 1/N sum_i 1/|o_i| sum_t l_it          (Shao et al. 2024,
//                    DeepSeekMath, eq. 3: each answer's token mean, then the mean over answers)
//   variant dapo     A_i as grpo; list loss = sum_i sum_t l_it / sum_i |o_i|   (Yu et al. 2025,
//                    DAPO, eq. 8: token-level mean over the group; clip-higher eps_high > eps_low)
//   variant dr_grpo  A_i = r_i - mean r; list loss = 1/N sum_i 1/L sum_t l_it, L = max_tokens
//                    (Liu et al. 2025, Dr. GRPO: no std division, a constant length normaliser)
//
// With loss.grpo.drop_all_equal (DAPO's dynamic sampling) lists whose rewards are all equal are
// left out: the batch loss is the mean over the other lists (0 when none is left), and
// metrics.lists_dropped counts them. Otherwise such lists count in the mean (their advantages are
// 0; only the KL term moves them).
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

  // loss.name grpo, token by token: (B, N, A), A = the longest answer.
  at::Tensor token_logps;      // the policy's, with autograd
  at::Tensor token_mask;       // 1 on answer tokens, 0 on padding
  at::Tensor old_token_logps;  // the sampling policy's; undefined = on-policy (ratio exactly 1)
  at::Tensor ref_token_logps;  // the reference's, for loss.grpo.kl_beta > 0
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

  // Of the answers' rewards, for every list loss (undefined without rewards):
  at::Tensor mean_reward;  // mean over lists of each list's mean reward
  at::Tensor reward_std;   // mean over lists of the reward std within the list (N - 1)

  // loss.name grpo only (undefined otherwise), counted over the answer tokens of the lists kept:
  at::Tensor tokens;         // answer tokens
  at::Tensor clipped_low;    // tokens whose ratio was clipped at 1 - eps_low (A < 0)
  at::Tensor clipped_high;   // tokens whose ratio was clipped at 1 + eps_high (A > 0)
  at::Tensor kl_sum;         // summed k3 KL to the reference (0 without ref_token_logps)
  at::Tensor lists_dropped;  // lists left out by drop_all_equal (int64)

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
/// Needs token_logps, token_mask and rewards (old_token_logps, ref_token_logps as said above);
/// policy_logps, when given, feeds the ranking metrics (the policy's own log-probs).
/// loss.grpo.max_tokens must be > 0 for dr_grpo (the trainer sets it to data.max_answer_tokens).
LossOutput grpo_loss(const ListwiseInputs& inputs, const LossConfig& config);

/// Runs the objective named by config.name (perpo | dpo | lipo | ranking | sft | grpo).
/// Throws perpo::Error (input) for an unknown name or invalid settings, with a hint.
LossOutput compute_loss(const ListwiseInputs& inputs, const LossConfig& config);

/// Checks name, beta, gamma, nll_weight and the grpo settings; throws perpo::Error (input) with a
/// hint.
void validate_loss_config(const LossConfig& config);

/// True when the objective reads reference log-probs: the summed ones (not sft, grpo or
/// reference_free), or grpo's per-token ones (loss.grpo.kl_beta > 0).
bool loss_needs_reference(const LossConfig& config);

/// True for loss.name grpo with kl_beta > 0: the reference is read token by token at each step.
bool loss_needs_token_reference(const LossConfig& config);

}  // namespace perpo
