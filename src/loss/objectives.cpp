// PerPO, ranking, DPO, LiPO-lambda, SFT and GRPO on (B lists, N answers), plus metrics and the
// selector.
#include "perpo/loss/objectives.h"

#include <torch/torch.h>

#include <cmath>
#include <functional>

#include "perpo/core/error.h"
#include "perpo/loss/pair_weights.h"

namespace perpo {
namespace {

constexpr const char* kLossNames = "perpo, dpo, lipo, ranking, sft, grpo";

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
  LossMetrics m;  // the reward and grpo metrics stay undefined
  m.pair_accuracy = m.mean_margin = m.chosen_logratio = m.rejected_logratio = zero;
  m.pairs = m.lists_without_signal = zero_count;
  return m;
}

/// objective (+ nll_weight * mean nll) -> LossOutput, with the per-list values kept detached.
/// `kept` (B) 0/1, when given, leaves lists out of the objective's mean (grpo's drop_all_equal).
LossOutput finish(const at::Tensor& per_list, const ListwiseInputs& in, const LossConfig& config,
                  const at::Tensor& kept = at::Tensor()) {
  LossOutput out;
  out.per_list = per_list.detach();
  if (kept.defined()) {
    out.objective = (per_list * kept).sum() / kept.sum().clamp_min(1);  // 0 when none is kept
  } else {
    out.objective = per_list.mean();  // mean over all lists, signal-free ones included
  }
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

/// Fills metrics.mean_reward and reward_std from rewards (B, N).
void add_reward_metrics(LossMetrics& m, const at::Tensor& rewards) {
  torch::NoGradGuard no_grad;
  const at::Tensor r = rewards.detach().to(compute_dtype(rewards));
  m.mean_reward = r.mean(1).mean();
  m.reward_std = r.size(1) > 1 ? r.std(1, /*unbiased=*/true).mean() : torch::zeros_like(r.sum());
}

void check_finite_rewards(const at::Tensor& rewards) {
  // A NaN reward would silently drop its answer from every pair. Checked where it costs no
  // device sync (rewards usually come from JSON and live on the CPU).
  PERPO_CHECK_INPUT(!rewards.device().is_cpu() || torch::isfinite(rewards).all().item<bool>(),
                    "loss input 'rewards' holds NaN or infinite values; every answer needs a ",
                    "finite reward");
}

LossOutput listwise_loss(const ListwiseInputs& in, const LossConfig& config,
                         const PairWeightsFn& pair_weights) {
  validate_loss_config(config);
  check_policy(in, 2);
  check_same_lists(in.rewards, in.policy_logps, "rewards");
  check_finite_rewards(in.rewards);
  auto scores = implicit_scores(in, config);                                     // (B, N)
  auto rewards = in.rewards.detach().to(scores.device(), scores.scalar_type());  // (B, N)
  auto weights = pair_weights(rewards, scores);                                  // (B, N, N)
  auto per_list = weighted_pairwise_logistic(scores, weights, config.beta);      // (B,)
  auto out = finish(per_list, in, config);
  out.metrics = ranking_metrics(scores, rewards);
  add_reward_metrics(out.metrics, rewards);
  return out;
}

void check_same_tokens(const at::Tensor& t, const at::Tensor& like, const char* name) {
  PERPO_CHECK_INPUT(t.defined() && t.sizes() == like.sizes(), "loss input '", name, "' is ",
                    t.defined() ? t.sizes() : at::IntArrayRef{}, " but token_logps is ",
                    like.sizes(), "; both must be (B lists, N answers, A tokens)");
}

}  // namespace

std::map<std::string, double> LossMetrics::to_map() const {
  auto read = [](const at::Tensor& t) { return t.defined() ? t.item<double>() : 0.0; };
  std::map<std::string, double> out = {{"pair_accuracy", read(pair_accuracy)},
                                       {"mean_margin", read(mean_margin)},
                                       {"chosen_logratio", read(chosen_logratio)},
                                       {"rejected_logratio", read(rejected_logratio)},
                                       {"pairs", read(pairs)},
                                       {"lists_without_signal", read(lists_without_signal)}};
  const std::pair<const char*, const at::Tensor*> optional[] = {
      {"mean_reward", &mean_reward},    {"reward_std", &reward_std},     {"tokens", &tokens},
      {"clipped_low", &clipped_low},    {"clipped_high", &clipped_high}, {"kl_sum", &kl_sum},
      {"lists_dropped", &lists_dropped}};
  for (const auto& [name, tensor] : optional) {
    if (tensor->defined()) out[name] = read(*tensor);
  }
  return out;
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
    add_reward_metrics(out.metrics, in.rewards);
  } else {
    out.metrics = zero_metrics(logps);
  }
  return out;
}

LossOutput grpo_loss(const ListwiseInputs& in, const LossConfig& config) {
  validate_loss_config(config);
  const GrpoConfig& g = config.grpo;
  PERPO_CHECK_INPUT(in.token_logps.defined() && in.token_logps.dim() == 3,
                    "loss.name grpo needs the loss input 'token_logps' as (B lists, N answers, A "
                    "tokens), got ",
                    in.token_logps.defined() ? in.token_logps.sizes() : at::IntArrayRef{});
  const std::int64_t B = in.token_logps.size(0), N = in.token_logps.size(1);
  PERPO_CHECK_INPUT(B >= 1 && N >= 2, "loss.name grpo needs at least 1 list of 2 answers, got ",
                    in.token_logps.sizes());
  check_same_tokens(in.token_mask, in.token_logps, "token_mask");
  PERPO_CHECK_INPUT(
      in.rewards.defined() && in.rewards.sizes() == in.token_logps.sizes().slice(0, 2),
      "loss input 'rewards' must be (B lists, N answers) = (", B, ", ", N, ")");
  check_finite_rewards(in.rewards);
  if (in.old_token_logps.defined())
    check_same_tokens(in.old_token_logps, in.token_logps, "old_token_logps");
  const bool with_kl = g.kl_beta > 0;
  if (with_kl) {
    PERPO_CHECK_INPUT(in.ref_token_logps.defined(), "loss.grpo.kl_beta is ", g.kl_beta,
                      " but the loss input 'ref_token_logps' (the reference's token log-probs) "
                      "is missing");
    check_same_tokens(in.ref_token_logps, in.token_logps, "ref_token_logps");
  }
  PERPO_CHECK_INPUT(g.variant != "dr_grpo" || g.max_tokens > 0,
                    "loss.grpo.variant dr_grpo divides by a constant length: loss.grpo.max_tokens "
                    "must be > 0, got ",
                    g.max_tokens);

  const auto dtype = compute_dtype(in.token_logps);
  const at::Tensor logp = in.token_logps.to(dtype);                         // (B, N, A)
  const at::Tensor mask = in.token_mask.to(logp.device(), dtype);           // (B, N, A)
  const at::Tensor on = mask > 0;                                           // (B, N, A)
  const at::Tensor rewards = in.rewards.detach().to(logp.device(), dtype);  // (B, N)
  at::Tensor advantages = rewards - rewards.mean(1, /*keepdim=*/true);      // (B, N)
  if (g.variant != "dr_grpo") {
    advantages = advantages / (rewards.std(1, /*unbiased=*/true, /*keepdim=*/true) + g.std_eps);
  }
  const at::Tensor adv = advantages.unsqueeze(2);  // (B, N, 1)
  const at::Tensor old = in.old_token_logps.defined()
                             ? in.old_token_logps.detach().to(logp.device(), dtype)
                             : logp.detach();
  // Padding may hold anything: the ratio and the KL see 0 there, then the mask removes them.
  const at::Tensor zero = torch::zeros({}, logp.options());
  const at::Tensor ratio = torch::exp(torch::where(on, logp - old, zero));  // (B, N, A)
  const double low = 1.0 - g.eps_low, high = 1.0 + g.eps_high;
  at::Tensor per_token = -torch::minimum(ratio * adv, ratio.clamp(low, high) * adv);  // (B, N, A)
  at::Tensor kl;
  if (with_kl) {
    const at::Tensor d =
        torch::where(on, in.ref_token_logps.detach().to(logp.device(), dtype) - logp, zero);
    kl = torch::exp(d) - d - 1;  // k3: >= 0, unbiased for KL(policy || reference)
    per_token = per_token + g.kl_beta * kl;
  }
  per_token = per_token * mask;
  const at::Tensor lengths = mask.sum(2);  // (B, N)
  at::Tensor per_list;                     // (B)
  if (g.variant == "grpo") {
    per_list = (per_token.sum(2) / lengths.clamp_min(1)).mean(1);
  } else if (g.variant == "dapo") {
    per_list = per_token.sum({1, 2}) / lengths.sum(1).clamp_min(1);
  } else {  // dr_grpo
    per_list = per_token.sum({1, 2}) / (static_cast<double>(N) * g.max_tokens);
  }
  const at::Tensor all_equal = rewards.amax(1) == rewards.amin(1);  // (B)
  at::Tensor kept;
  if (g.drop_all_equal) {
    kept = torch::logical_not(all_equal).to(dtype);
    per_list = per_list * kept;
  }
  LossOutput out = finish(per_list, in, config, kept);

  torch::NoGradGuard no_grad;
  const at::Tensor counted =
      (kept.defined() ? mask * kept.view({B, 1, 1}) : mask).detach();  // tokens of kept lists
  out.metrics = ranking_metrics((logp.detach() * mask).sum(2), rewards);
  add_reward_metrics(out.metrics, rewards);
  const at::Tensor r = ratio.detach();
  out.metrics.tokens = counted.sum();
  out.metrics.clipped_low = (counted * ((r < low) & (adv < 0)).to(dtype)).sum();
  out.metrics.clipped_high = (counted * ((r > high) & (adv > 0)).to(dtype)).sum();
  out.metrics.kl_sum = with_kl ? (counted * kl.detach()).sum() : torch::zeros({}, logp.options());
  out.metrics.lists_dropped = g.drop_all_equal ? all_equal.sum().to(at::kLong)
                                               : torch::zeros({}, logp.options().dtype(at::kLong));
  return out;
}

void validate_loss_config(const LossConfig& config) {
  const auto& n = config.name;
  if (n != "perpo" && n != "dpo" && n != "lipo" && n != "ranking" && n != "sft" && n != "grpo") {
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
  const GrpoConfig& g = config.grpo;
  if (g.variant != "grpo" && g.variant != "dapo" && g.variant != "dr_grpo") {
    throw input_error("unknown loss.grpo.variant '", g.variant, "'")
        .hint("use one of: grpo, dapo, dr_grpo");
  }
  if (!(std::isfinite(g.eps_low) && g.eps_low >= 0 && g.eps_low < 1)) {
    throw input_error("loss.grpo.eps_low must be in [0, 1), got ", g.eps_low)
        .hint("the ratio is clipped below at 1 - eps_low; e.g. 0.2");
  }
  if (!(std::isfinite(g.eps_high) && g.eps_high >= 0)) {
    throw input_error("loss.grpo.eps_high must be a finite number >= 0, got ", g.eps_high)
        .hint("the ratio is clipped above at 1 + eps_high; e.g. 0.2, or DAPO's 0.28");
  }
  if (!(std::isfinite(g.kl_beta) && g.kl_beta >= 0)) {
    throw input_error("loss.grpo.kl_beta must be a finite number >= 0, got ", g.kl_beta)
        .hint("0 turns the KL term off");
  }
  if (!(std::isfinite(g.std_eps) && g.std_eps > 0)) {
    throw input_error("loss.grpo.std_eps must be a finite number > 0, got ", g.std_eps)
        .hint("it keeps lists of equal rewards from dividing by 0; e.g. 1e-4");
  }
  if (g.max_tokens < 0) {
    throw input_error("loss.grpo.max_tokens must be >= 0, got ", g.max_tokens)
        .hint("0 = data.max_answer_tokens");
  }
}

bool loss_needs_reference(const LossConfig& config) {
  if (config.name == "grpo") return loss_needs_token_reference(config);
  return config.name != "sft" && !config.reference_free;
}

bool loss_needs_token_reference(const LossConfig& config) {
  return config.name == "grpo" && config.grpo.kl_beta > 0;
}

LossOutput compute_loss(const ListwiseInputs& inputs, const LossConfig& config) {
  validate_loss_config(config);
  if (config.name == "perpo") return perpo_loss(inputs, config);
  if (config.name == "dpo") return dpo_loss(inputs, config);
  if (config.name == "lipo") return lipo_loss(inputs, config);
  if (config.name == "ranking") return ranking_loss(inputs, config);
  if (config.name == "grpo") return grpo_loss(inputs, config);
  return sft_loss(inputs, config);
}

}  // namespace perpo
