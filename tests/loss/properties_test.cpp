// Properties of every objective on random inputs: independent loop implementations of PerPO,
// LiPO-lambda, ranking and DPO (plain doubles over std::vector, no tensors), N = 2 equivalences,
// permutation invariance, gradients against finite differences, and finite results for huge
// log-ratios.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "perpo/loss/objectives.h"

namespace perpo {
namespace {

using Matrix = std::vector<std::vector<double>>;  // [list][answer]

double softplus_ref(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

/// Random lists with ties: rewards on a 0.1 grid, and list 1 (when B > 1) all equal.
struct RandomLists {
  Matrix policy, ref, rewards, tokens;
};

RandomLists random_lists(int lists, int answers, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> logp(-20.0, 6.0);
  std::uniform_int_distribution<int> tenth(0, 10), length(1, 30);
  RandomLists data;
  for (int b = 0; b < lists; ++b) {
    std::vector<double> p, q, r, t;
    for (int i = 0; i < answers; ++i) {
      p.push_back(logp(rng));
      q.push_back(logp(rng));
      r.push_back(b == 1 ? 0.3 : tenth(rng) / 10.0);
      t.push_back(length(rng));
    }
    data.policy.push_back(p);
    data.ref.push_back(q);
    data.rewards.push_back(r);
    data.tokens.push_back(t);
  }
  return data;
}

torch::Tensor to_tensor(const Matrix& m) {
  std::vector<double> flat;
  for (const auto& row : m) flat.insert(flat.end(), row.begin(), row.end());
  return torch::tensor(flat, torch::kDouble).reshape({static_cast<long>(m.size()), -1});
}

ListwiseInputs to_inputs(const RandomLists& data) {
  ListwiseInputs in;
  in.policy_logps = to_tensor(data.policy).requires_grad_(true);
  in.ref_logps = to_tensor(data.ref);
  in.rewards = to_tensor(data.rewards);
  in.answer_tokens = to_tensor(data.tokens);
  return in;
}

/// s of answer i of list b, exactly as method.md defines it.
double score_ref(const RandomLists& d, size_t b, size_t i, const LossConfig& c) {
  double s = d.policy[b][i] - (c.reference_free ? 0.0 : d.ref[b][i]);
  return c.length_normalize ? s / d.tokens[b][i] : s;
}

/// method.md, written as plainly as possible: mean over lists of
/// sum_{r_i > r_j} |r_i - r_j|^gamma / (sum of the same) * softplus(-beta (s_i - s_j)).
double perpo_reference(const RandomLists& d, const LossConfig& c) {
  double total = 0;
  for (size_t b = 0; b < d.policy.size(); ++b) {
    const size_t n = d.policy[b].size();
    double weight_sum = 0;
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j)
        if (d.rewards[b][i] > d.rewards[b][j])
          weight_sum += std::pow(d.rewards[b][i] - d.rewards[b][j], c.gamma);
    if (weight_sum == 0) continue;  // all rewards equal: no signal, contributes 0
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j)
        if (d.rewards[b][i] > d.rewards[b][j]) {
          const double w = std::pow(d.rewards[b][i] - d.rewards[b][j], c.gamma) / weight_sum;
          const double margin = score_ref(d, b, i, c) - score_ref(d, b, j, c);
          total += w * softplus_ref(-c.beta * margin);
        }
  }
  return total / d.policy.size();
}

/// LiPO-lambda with loops: tau_i = 1 + #answers ahead (higher s, or equal s and higher r).
double lipo_reference(const RandomLists& d, const LossConfig& c) {
  double total = 0;
  for (size_t b = 0; b < d.policy.size(); ++b) {
    const size_t n = d.policy[b].size();
    std::vector<double> inv_discount(n), gain(n);
    for (size_t i = 0; i < n; ++i) {
      int ahead = 0;
      for (size_t k = 0; k < n; ++k) {
        const double sk = score_ref(d, b, k, c), si = score_ref(d, b, i, c);
        if (sk > si || (sk == si && d.rewards[b][k] > d.rewards[b][i])) ++ahead;
      }
      inv_discount[i] = 1.0 / std::log2(1.0 + (1 + ahead));
      gain[i] = std::pow(2.0, d.rewards[b][i]) - 1;
    }
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j)
        if (d.rewards[b][i] > d.rewards[b][j]) {
          const double delta =
              std::abs(gain[i] - gain[j]) * std::abs(inv_discount[i] - inv_discount[j]);
          const double margin = score_ref(d, b, i, c) - score_ref(d, b, j, c);
          total += delta * softplus_ref(-c.beta * margin);
        }
  }
  return total / d.policy.size();
}

/// Unweighted all-pairs ranking (every better pair 1 / #pairs) and DPO on best vs worst (spread
/// evenly over tied best and tied worst answers), with loops.
double ranking_reference(const RandomLists& d, const LossConfig& c, bool best_vs_worst) {
  double total = 0;
  for (size_t b = 0; b < d.policy.size(); ++b) {
    const auto& r = d.rewards[b];
    const double best = *std::max_element(r.begin(), r.end());
    const double worst = *std::min_element(r.begin(), r.end());
    auto counts = [&](size_t i, size_t j) {
      return r[i] > r[j] && (!best_vs_worst || (r[i] == best && r[j] == worst));
    };
    double pairs = 0, list = 0;
    for (size_t i = 0; i < r.size(); ++i)
      for (size_t j = 0; j < r.size(); ++j)
        if (counts(i, j)) {
          pairs += 1;
          list += softplus_ref(-c.beta * (score_ref(d, b, i, c) - score_ref(d, b, j, c)));
        }
    if (pairs > 0) total += list / pairs;
  }
  return total / d.policy.size();
}

TEST(LossProperties, ObjectivesMatchLoopImplementations) {
  unsigned seed = 100;
  for (int answers : {2, 3, 5, 20}) {
    for (double gamma : {0.0, 0.5, 2.0}) {
      for (bool length_normalize : {false, true}) {
        for (bool reference_free : {false, true}) {
          LossConfig c;
          c.beta = gamma == 2.0 ? 1.0 : 0.1;
          c.gamma = gamma;
          c.length_normalize = length_normalize;
          c.reference_free = reference_free;
          RandomLists data = random_lists(4, answers, ++seed);
          const double perpo = perpo_loss(to_inputs(data), c).loss.item<double>();
          const double lipo = lipo_loss(to_inputs(data), c).loss.item<double>();
          EXPECT_NEAR(perpo, perpo_reference(data, c), 1e-9)
              << "N=" << answers << " gamma=" << gamma << " ln=" << length_normalize;
          EXPECT_NEAR(lipo, lipo_reference(data, c), 1e-9)
              << "N=" << answers << " gamma=" << gamma << " ln=" << length_normalize;
          EXPECT_NEAR(ranking_loss(to_inputs(data), c).loss.item<double>(),
                      ranking_reference(data, c, false), 1e-9);
          EXPECT_NEAR(dpo_loss(to_inputs(data), c).loss.item<double>(),
                      ranking_reference(data, c, true), 1e-9);
        }
      }
    }
  }
}

TEST(LossProperties, PerpoAndRankingWithTwoAnswersEqualDpo) {
  RandomLists data = random_lists(6, 2, 7);
  data.rewards[0] = {0.4, 0.4};  // and list 1 is all-equal too
  LossConfig c;
  ListwiseInputs dpo_in = to_inputs(data);
  LossOutput dpo = dpo_loss(dpo_in, c);
  dpo.loss.backward();
  for (auto loss : {perpo_loss, ranking_loss}) {
    ListwiseInputs in = to_inputs(data);
    LossOutput out = loss(in, c);
    out.loss.backward();
    EXPECT_NEAR(out.loss.item<double>(), dpo.loss.item<double>(), 1e-14);
    EXPECT_TRUE(torch::allclose(in.policy_logps.grad(), dpo_in.policy_logps.grad(), 0, 1e-15));
  }
}

const std::vector<std::string> kAllLosses = {"perpo", "ranking", "dpo", "lipo", "sft"};

TEST(LossProperties, PermutingAListChangesNothing) {
  for (const auto& name : kAllLosses) {
    SCOPED_TRACE(name);
    RandomLists data = random_lists(3, 6, 21);
    LossConfig c;
    c.name = name;
    ListwiseInputs in = to_inputs(data);
    LossOutput out = compute_loss(in, c);
    out.loss.backward();

    // A different permutation of the answers in every list.
    torch::manual_seed(5);
    auto perm = torch::stack({torch::randperm(6), torch::randperm(6), torch::randperm(6)});
    ListwiseInputs shuffled;
    shuffled.policy_logps = in.policy_logps.detach().gather(1, perm).requires_grad_(true);
    shuffled.ref_logps = in.ref_logps.gather(1, perm);
    shuffled.rewards = in.rewards.gather(1, perm);
    shuffled.answer_tokens = in.answer_tokens.gather(1, perm);
    LossOutput out2 = compute_loss(shuffled, c);
    out2.loss.backward();

    EXPECT_NEAR(out2.loss.item<double>(), out.loss.item<double>(), 1e-12);
    EXPECT_TRUE(torch::allclose(shuffled.policy_logps.grad(),
                                in.policy_logps.grad().gather(1, perm), 1e-12, 1e-14));
    EXPECT_NEAR(out2.metrics.pair_accuracy.item<double>(), out.metrics.pair_accuracy.item<double>(),
                1e-12);
  }
}

TEST(LossProperties, GradientsMatchFiniteDifferences) {
  for (const auto& name : kAllLosses) {
    for (bool length_normalize : {false, true}) {
      SCOPED_TRACE(name + (length_normalize ? " length-normalised" : ""));
      LossConfig c;
      c.name = name;
      c.beta = 0.5;  // margins of order 1, so softplus is far from flat
      c.length_normalize = length_normalize;
      RandomLists data = random_lists(3, 5, 33);
      ListwiseInputs in = to_inputs(data);
      compute_loss(in, c).loss.backward();
      auto grad = in.policy_logps.grad().clone();

      torch::NoGradGuard no_grad;
      auto point = in.policy_logps.detach().clone();
      const double eps = 1e-6;
      for (std::int64_t b = 0; b < point.size(0); ++b) {
        for (std::int64_t i = 0; i < point.size(1); ++i) {
          auto at = [&](double delta) {
            ListwiseInputs moved = in;
            moved.policy_logps = point.clone();
            moved.policy_logps[b][i] += delta;
            return compute_loss(moved, c).loss.item<double>();
          };
          const double numeric = (at(eps) - at(-eps)) / (2 * eps);
          EXPECT_NEAR(grad[b][i].item<double>(), numeric, 1e-8) << "b=" << b << " i=" << i;
        }
      }
    }
  }
}

TEST(LossProperties, HugeLogRatiosStayFinite) {
  for (const auto& name : kAllLosses) {
    for (auto dtype : {torch::kDouble, torch::kFloat}) {
      for (double beta : {0.1, 1.0}) {
        SCOPED_TRACE(name);
        torch::manual_seed(9);
        ListwiseInputs in;
        // s up to |1e4| both ways: beta * margin reaches +-2e4, exp() of that overflows.
        in.policy_logps = (torch::randn({4, 5}, dtype).sign() * 1e4).requires_grad_(true);
        in.ref_logps = torch::zeros({4, 5}, dtype);
        in.rewards = torch::rand({4, 5}, dtype);
        in.answer_tokens = torch::full({4, 5}, 3.0, dtype);
        LossConfig c;
        c.name = name;
        c.beta = beta;
        LossOutput out = compute_loss(in, c);
        out.loss.backward();
        EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
        EXPECT_TRUE(torch::isfinite(in.policy_logps.grad()).all().item<bool>());
        for (const auto& [key, value] : out.metrics.to_map()) {
          EXPECT_TRUE(std::isfinite(value)) << key;
        }
      }
    }
  }
}

}  // namespace
}  // namespace perpo
