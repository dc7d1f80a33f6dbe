// Pair weights of the listwise objectives, and the weighted pairwise logistic loss they share.
//
// Every pairwise objective here has the form, per list b of N answers with scores s and rewards r,
//
//   L_b = sum_{i, j} W[b, i, j] * softplus(-beta * (s_i - s_j)),
//
// where W[b, i, j] > 0 only when r_i > r_j (i is the better answer). Pairs are ordered by reward
// here, so the order of answers in a list never matters; equal-reward pairs weigh 0; a list whose
// rewards are all equal has W = 0 everywhere and contributes exactly 0 (never 0/0 = NaN).
//
// The weight tensors are (B, N, N) and carry no gradient (rewards are data). Shapes: B lists,
// N answers per list.
#pragma once

#include <ATen/core/Tensor.h>

namespace perpo {

/// (B, N, N) bool: better[b, i, j] = rewards[b, i] > rewards[b, j].
at::Tensor better_pairs(const at::Tensor& rewards);

/// PerPO (method.md): W_ij = |r_i - r_j|^gamma / sum over the list's better pairs of the same,
/// for r_i > r_j. Each list's weights sum to 1 (or are all 0 when its rewards are all equal).
/// gamma = 0 gives the unweighted all-pairs ranking weights.
at::Tensor perpo_pair_weights(const at::Tensor& rewards, double gamma);

/// Unweighted all-pairs ranking: W_ij = 1 / #{pairs with r_k > r_l} for r_i > r_j.
at::Tensor ranking_pair_weights(const at::Tensor& rewards);

/// DPO on the best vs the worst answer. When several answers tie for best (or worst) the weight is
/// spread evenly over every (best, worst) pair, 1 / (#best * #worst), so the result does not
/// depend on answer order; with a unique best and worst this is plain DPO.
at::Tensor dpo_pair_weights(const at::Tensor& rewards);

/// Ranks of the answers under `scores` (B, N), 1 = highest, computed without gradient. Ties in
/// score are broken by reward (higher reward ranks first); answers equal in both share the best
/// rank of their group (competition ranking: 1, 1, 3), which keeps everything order-free.
/// Returned in the dtype of `scores`.
at::Tensor score_ranks(const at::Tensor& scores, const at::Tensor& rewards);

/// LiPO-lambda (arXiv 2402.01878): for r_i > r_j,
///   W_ij = Delta_ij = |G_i - G_j| * |1 / D(tau_i) - 1 / D(tau_j)|,
///   G = 2^r - 1,  D(tau) = log2(1 + tau),  tau = score_ranks(scores, rewards).
/// As in the LiPO paper the lambda weights are not normalised per list.
at::Tensor lipo_pair_weights(const at::Tensor& rewards, const at::Tensor& scores);

/// Per-list loss (B,) = sum_{i,j} weights[b,i,j] * softplus(-beta * (scores_i - scores_j)), for
/// scores (B, N) and weights (B, N, N). Differentiable in scores.
at::Tensor weighted_pairwise_logistic(const at::Tensor& scores, const at::Tensor& weights,
                                      double beta);

}  // namespace perpo
