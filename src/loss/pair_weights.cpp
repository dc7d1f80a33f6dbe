// Pair weights (B, N, N) of PerPO, ranking, DPO and LiPO-lambda, and the shared pairwise loss.
#include "perpo/loss/pair_weights.h"

#include <torch/torch.h>

#include "perpo/core/error.h"

namespace perpo {
namespace {

void check_lists(const at::Tensor& rewards, const char* what) {
  PERPO_CHECK(rewards.dim() == 2, what, ": rewards must be (B lists, N answers), got ",
              rewards.sizes());
}

/// weights / total per list, and exactly 0 where a list's total is 0 (no signal, no 0/0).
at::Tensor normalise_per_list(const at::Tensor& raw) {
  auto total = raw.sum({1, 2}, /*keepdim=*/true);  // (B, 1, 1)
  auto has_signal = total > 0;                     // (B, 1, 1)
  auto safe_total = torch::where(has_signal, total, torch::ones_like(total));
  return torch::where(has_signal, raw / safe_total, torch::zeros_like(raw));  // (B, N, N)
}

}  // namespace

at::Tensor better_pairs(const at::Tensor& rewards) {
  check_lists(rewards, "better_pairs");
  return rewards.unsqueeze(2) > rewards.unsqueeze(1);  // (B, N, N): r_i > r_j
}

at::Tensor perpo_pair_weights(const at::Tensor& rewards, double gamma) {
  PERPO_CHECK(gamma >= 0, "loss.gamma must be >= 0, got ", gamma);
  auto r = rewards.detach();
  auto gap = r.unsqueeze(2) - r.unsqueeze(1);  // (B, N, N): r_i - r_j
  auto better = gap > 0;                       // (B, N, N)
  auto raw = torch::where(better, gap.abs().pow(gamma), torch::zeros_like(gap));
  return normalise_per_list(raw);
}

at::Tensor ranking_pair_weights(const at::Tensor& rewards) {
  return normalise_per_list(better_pairs(rewards.detach()).to(rewards.scalar_type()));
}

at::Tensor dpo_pair_weights(const at::Tensor& rewards) {
  check_lists(rewards, "dpo_pair_weights");
  auto r = rewards.detach();
  auto best = (r == std::get<0>(r.max(1, /*keepdim=*/true))).to(r.scalar_type());   // (B, N)
  auto worst = (r == std::get<0>(r.min(1, /*keepdim=*/true))).to(r.scalar_type());  // (B, N)
  auto raw = best.unsqueeze(2) * worst.unsqueeze(1);  // (B, N, N): 1 on (best, worst) pairs
  // A list with max == min has every answer both best and worst: keep only r_i > r_j pairs.
  raw = raw * better_pairs(r).to(r.scalar_type());
  return normalise_per_list(raw);
}

at::Tensor score_ranks(const at::Tensor& scores, const at::Tensor& rewards) {
  PERPO_CHECK(scores.sizes() == rewards.sizes(), "score_ranks: scores ", scores.sizes(),
              " and rewards ", rewards.sizes(), " must have the same (B, N) shape");
  torch::NoGradGuard no_grad;
  auto s = scores.detach();
  auto r = rewards.detach();
  // ahead[b, i, k]: answer k ranks ahead of answer i.
  auto s_k = s.unsqueeze(1), s_i = s.unsqueeze(2);  // (B, 1, N), (B, N, 1)
  auto r_k = r.unsqueeze(1), r_i = r.unsqueeze(2);
  auto ahead = (s_k > s_i) | ((s_k == s_i) & (r_k > r_i));  // (B, N, N)
  return (ahead.sum(2) + 1).to(scores.scalar_type());       // (B, N)
}

at::Tensor lipo_pair_weights(const at::Tensor& rewards, const at::Tensor& scores) {
  check_lists(rewards, "lipo_pair_weights");
  torch::NoGradGuard no_grad;
  auto r = rewards.detach().to(scores.scalar_type());
  auto gain = torch::pow(2.0, r) - 1;                                 // (B, N): G = 2^r - 1
  auto inv_discount = 1.0 / torch::log2(1 + score_ranks(scores, r));  // (B, N): 1 / D(tau)
  auto gain_gap = (gain.unsqueeze(2) - gain.unsqueeze(1)).abs();      // (B, N, N)
  auto discount_gap = (inv_discount.unsqueeze(2) - inv_discount.unsqueeze(1)).abs();  // (B, N, N)
  auto delta = gain_gap * discount_gap;
  return torch::where(better_pairs(r), delta, torch::zeros_like(delta));  // (B, N, N)
}

at::Tensor weighted_pairwise_logistic(const at::Tensor& scores, const at::Tensor& weights,
                                      double beta) {
  PERPO_CHECK(scores.dim() == 2, "scores must be (B, N), got ", scores.sizes());
  PERPO_CHECK(weights.dim() == 3 && weights.size(0) == scores.size(0) &&
                  weights.size(1) == scores.size(1) && weights.size(2) == scores.size(1),
              "pair weights ", weights.sizes(), " must be (B, N, N) for scores ", scores.sizes());
  auto margin = scores.unsqueeze(2) - scores.unsqueeze(1);               // (B, N, N): s_i - s_j
  auto pair_loss = torch::softplus(-beta * margin);                      // (B, N, N)
  return (weights.to(pair_loss.scalar_type()) * pair_loss).sum({1, 2});  // (B,)
}

}  // namespace perpo
