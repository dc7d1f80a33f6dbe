// PerPO, ranking, DPO, LiPO-lambda and SFT on (B lists, N answers), plus metrics and the selector.
#include "perpo/loss/objectives.h"

#include <torch/torch.h>

#include <cmath>
#include <functional>

#include "perpo/core/error.h"
#include "perpo/loss/pair_weights.h"

namespace perpo {
namespace {

constexpr const char* kLossNames = "perpo, dpo, lipo, ranking, sft";

/// Pair weights (B, N, N) from rewards and the current scores (only LiPO reads the scores).
using PairWeightsFn =
    std::function<at::Tensor(const at::Tensor& rewards, const at::Tensor& scores)>;

at::ScalarType compute_dtype(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

void check_same_lists(const at::Tensor& t, const at::Tensor& like, const char* name) {
  PERPO_CHECK_INPUT(t.defined(), "loss input '", name, "' is missing; it must be (B, N) like ",
                    "policy_logps ", like.sizes());
  PERPO_CHECK_INPUT(t.sizes() == like.sizes(), "loss input '", name, "' is ", t.sizes(),
                    " but policy_logps is ", like.sizes(), "; both must be (B lists, N answers)");
}

void check_policy(const ListwiseInputs& in, std::int64_t min_answers) {
  PERPO_CHECK_INPUT(in.policy_logps.defined() && in.policy_logps.dim() == 2,
                    "loss input 'policy_logps' must be (B lists, N answers), got ",
                    in.policy_logps.defined() ? in.policy_logps.sizes() : at::IntArrayRef{});
  PERPO_CHECK_INPUT(in.policy_logps.size(0) >= 1 && in.policy_logps.size(1) >= min_answers,
                    "loss needs at least 1 list of ", min_answers, " answers, got policy_logps ",
                    in.policy_logps.sizes());
}

LossMetrics zero_metrics(const at::Tensor& like) {
  auto zero = torch::zeros({}, like.options().dtype(compute_dtype(like)));
  auto zero_count = torch::zeros({}, like.options().dtype(at::kLong));
  return {zero, zero, zero, zero, zero_count, zero_count};
}

/// objective (+ nll_weight * mean nll) -> LossOutput, with the per-list values kept detached.
LossOutput finish(const at::Tensor& per_list, const ListwiseInputs& in, const LossConfig& config) {
  LossOutput out;
  out.per_list = per_list.detach();
  out.objective = per_list.mean();  // mean over all lists, signal-free ones included
  out.loss = out.objective;
  if (config.nll_weight > 0) {
    PERPO_CHECK_INPUT(in.nll.defined() && in.nll.dim() == 1 && in.nll.size(0) == per_list.size(0),
                      "loss.nll_weight is ", config.nll_weight,
                      " but the loss input 'nll' is not a (", per_list.size(0),
                      ",) tensor of per-list NLL values");
    out.nll_term = in.nll.to(per_list.scalar_type()).mean();
    out.loss = out.loss + config.nll_weight * out.nll_term;
  }
  return out;
}

LossOutput listwise_loss(const ListwiseInputs& in, const LossConfig& config,
                         const PairWeightsFn& pair_weights) {
  validate_loss_config(config);
  check_policy(in, 2);
  check_same_lists(in.rewards, in.policy_logps, "rewards");
  // A NaN reward would silently drop its answer from every pair. Checked where it costs no
  // device sync (rewards usually come from JSON and live on the CPU).
  PERPO_CHECK_INPUT(!in.rewards.device().is_cpu() || torch::isfinite(in.rewards).all().item<bool>(),
                    "loss input 'rewards' holds NaN or infinite values; every answer needs a ",
                    "finite reward");
  auto scores = implicit_scores(in, config);                                     // (B, N)
  auto rewards = in.rewards.detach().to(scores.device(), scores.scalar_type());  // (B, N)
  auto weights = pair_weights(rewards, scores);                                  // (B, N, N)
  auto per_list = weighted_pairwise_logistic(scores, weights, config.beta);      // (B,)
  auto out = finish(per_list, in, config);
  out.metrics = ranking_metrics(scores, rewards);
  return out;
}

}  // namespace

std::map<std::string, double> LossMetrics::to_map() const {
  auto read = [](const at::Tensor& t) { return t.defined() ? t.item<double>() : 0.0; };
  return {{"pair_accuracy", read(pair_accuracy)},
          {"mean_margin", read(mean_margin)},
          {"chosen_logratio", read(chosen_logratio)},
          {"rejected_logratio", read(rejected_logratio)},
          {"pairs", read(pairs)},
          {"lists_without_signal", read(lists_without_signal)}};
}

at::Tensor implicit_scores(const ListwiseInputs& in, const LossConfig& config) {
  check_policy(in, 1);
  const auto dtype = compute_dtype(in.policy_logps);
  auto scores = in.policy_logps.to(dtype);  // (B, N)
  if (!config.reference_free) {
    PERPO_CHECK_INPUT(in.ref_logps.defined(),
                      "loss input 'ref_logps' is missing but loss.reference_free is false",
                      "; pass reference log-probs or set loss.reference_free=true");
    check_same_lists(in.ref_logps, in.policy_logps, "ref_logps");
    scores = scores - in.ref_logps.detach().to(scores.device(), dtype);
  }
  if (config.length_normalize) {
    check_same_lists(in.answer_tokens, in.policy_logps, "answer_tokens");
    scores = scores / in.answer_tokens.to(scores.device(), dtype).clamp_min(1);
  }
  return scores;  // (B, N)
}

LossMetrics ranking_metrics(const at::Tensor& scores, const at::Tensor& rewards) {
  torch::NoGradGuard no_grad;
  auto s = scores.detach();
  auto better = better_pairs(rewards.detach().to(s.device(), s.scalar_type()))
                    .to(s.scalar_type());  // (B, N, N)
  auto s_better = s.unsqueeze(2);          // (B, N, 1): s_i
  auto s_worse = s.unsqueeze(1);           // (B, 1, N): s_j
  auto margin = s_better - s_worse;        // (B, N, N)
  LossMetrics m;
  m.pairs = better.sum().to(at::kLong);
  auto denom = better.sum().clamp_min(1);
  m.pair_accuracy = (better * (margin > 0).to(s.scalar_type())).sum() / denom;
  m.mean_margin = (better * margin).sum() / denom;
  m.chosen_logratio = (better * s_better).sum() / denom;
  m.rejected_logratio = (better * s_worse).sum() / denom;
  m.lists_without_signal = (better.sum({1, 2}) == 0).sum().to(at::kLong);
  return m;
}

LossOutput perpo_loss(const ListwiseInputs& in, const LossConfig& config) {
  return listwise_loss(in, config, [&](const at::Tensor& rewards, const at::Tensor&) {
    return perpo_pair_weights(rewards, config.gamma);
  });
}

LossOutput ranking_loss(const ListwiseInputs& in, const LossConfig& config) {
  return listwise_loss(in, config, [](const at::Tensor& rewards, const at::Tensor&) {
    return ranking_pair_weights(rewards);
  });
}

LossOutput dpo_loss(const ListwiseInputs& in, const LossConfig& config) {
  return listwise_loss(in, config, [](const at::Tensor& rewards, const at::Tensor&) {
    return dpo_pair_weights(rewards);
  });
}

LossOutput lipo_loss(const ListwiseInputs& in, const LossConfig& config) {
  return listwise_loss(in, config, [](const at::Tensor& rewards, const at::Tensor& scores) {
    return lipo_pair_weights(rewards, scores);
  });
}

LossOutput sft_loss(const ListwiseInputs& in, const LossConfig& config) {
  validate_loss_config(config);
  check_policy(in, 1);
  check_same_lists(in.answer_tokens, in.policy_logps, "answer_tokens");
  const auto dtype = compute_dtype(in.policy_logps);
  auto logps = in.policy_logps.to(dtype);                    // (B, N)
  auto tokens = in.answer_tokens.to(logps.device(), dtype);  // (B, N)
  LossOutput out;
  out.objective = -logps.sum() / tokens.sum().clamp_min(1);  // token mean over the batch
  out.loss = out.objective;
  out.per_list = (-logps.sum(1) / tokens.sum(1).clamp_min(1)).detach();  // (B,)
  if (in.rewards.defined()) {
    check_same_lists(in.rewards, in.policy_logps, "rewards");
    LossConfig scoring = config;
    scoring.reference_free = config.reference_free || !in.ref_logps.defined();
    out.metrics = ranking_metrics(implicit_scores(in, scoring), in.rewards);
  } else {
    out.metrics = zero_metrics(logps);
  }
  return out;
}

void validate_loss_config(const LossConfig& config) {
  const auto& n = config.name;
  if (n != "perpo" && n != "dpo" && n != "lipo" && n != "ranking" && n != "sft") {
    throw input_error("unknown loss.name '", n, "'").hint(std::string("use one of: ") + kLossNames);
  }
  if (!(std::isfinite(config.beta) && config.beta > 0)) {
    throw input_error("loss.beta must be a finite number > 0, got ", config.beta)
        .hint("the authors' release uses loss.beta=0.1");
  }
  if (!(std::isfinite(config.gamma) && config.gamma >= 0)) {
    throw input_error("loss.gamma must be a finite number >= 0, got ", config.gamma)
        .hint("the authors' release uses loss.gamma=0.5; 0 weighs every pair equally");
  }
  if (!(std::isfinite(config.nll_weight) && config.nll_weight >= 0)) {
    throw input_error("loss.nll_weight must be a finite number >= 0, got ", config.nll_weight)
        .hint("0 turns the added SFT term off");
  }
}

bool loss_needs_reference(const LossConfig& config) {
  return config.name != "sft" && !config.reference_free;
}

LossOutput compute_loss(const ListwiseInputs& inputs, const LossConfig& config) {
  validate_loss_config(config);
  if (config.name == "perpo") return perpo_loss(inputs, config);
  if (config.name == "dpo") return dpo_loss(inputs, config);
  if (config.name == "lipo") return lipo_loss(inputs, config);
  if (config.name == "ranking") return ranking_loss(inputs, config);
  return sft_loss(inputs, config);
}

}  // namespace perpo
