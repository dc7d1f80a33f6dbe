// The SDPA attention path equals the hand-written reference (fp32, 1e-5) for every attention
// shape the model uses, outputs and gradients: the vision tower (all-to-all, H == Hkv), the
// prefix (causal, grouped-query), padded batches, decoding with a KV cache (past batch B, one new
// token), the answers of a list over a shared batch-1 prefix (the packed block mask), and the
// grouped-query fold that kernels without enable_gqa use; then the whole model both ways.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "perpo/core/error.h"
#include "perpo/model/attention.h"
#include "perpo/model/llava.h"
#include "small_llava.h"

namespace perpo {
namespace {

constexpr double kTol = 1e-5;

/// Outputs and gradients of one attention computation on fresh leaf copies of the inputs.
struct Result {
  torch::Tensor out;
  std::vector<torch::Tensor> grads;  // of the inputs given, in order
};

template <typename Fn>
Result run(const std::vector<torch::Tensor>& inputs, const torch::Tensor& weights, Fn fn) {
  std::vector<torch::Tensor> leaves;
  for (const auto& t : inputs) leaves.push_back(t.detach().clone().requires_grad_(true));
  Result r;
  r.out = fn(leaves);
  (r.out * weights).sum().backward();  // a loss that weighs every output entry differently
  for (const auto& leaf : leaves) r.grads.push_back(leaf.grad().clone());
  r.out = r.out.detach();
  return r;
}

void expect_close(const Result& a, const Result& b, const std::string& what) {
  ASSERT_EQ(a.out.sizes(), b.out.sizes()) << what;
  EXPECT_TRUE(torch::allclose(a.out, b.out, kTol, kTol))
      << what << ": output differs by " << (a.out - b.out).abs().max().item<double>();
  ASSERT_EQ(a.grads.size(), b.grads.size());
  for (std::size_t i = 0; i < a.grads.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a.grads[i], b.grads[i], kTol, kTol))
        << what << ": gradient of input " << i << " differs by "
        << (a.grads[i] - b.grads[i]).abs().max().item<double>();
  }
}

/// Both implementations of attend_layer over the same inputs (q, k, v[, past_k, past_v]).
void compare_layer(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                   const torch::Tensor& past_k, const torch::Tensor& past_v,
                   const torch::Tensor& key_mask, const std::string& what) {
  const bool has_past = past_k.defined();
  const auto P = has_past ? past_k.size(2) : 0, past_batch = has_past ? past_k.size(0) : 0;
  torch::Tensor weights = torch::randn(q.sizes());
  std::vector<torch::Tensor> inputs{q, k, v};
  if (has_past) inputs.insert(inputs.end(), {past_k, past_v});
  auto with = [&](AttentionImpl impl) {
    AttentionImplGuard guard(impl);
    AttentionMask mask =
        make_attention_mask(P, past_batch, q.size(0), q.size(2), key_mask, torch::kCPU);
    return run(inputs, weights, [&](const std::vector<torch::Tensor>& in) {
      return attend_layer(in[0], has_past ? in[3] : torch::Tensor(),
                          has_past ? in[4] : torch::Tensor(), in[1], in[2], mask, 0.37);
    });
  };
  Result reference = with(AttentionImpl::reference);
  Result fast = with(AttentionImpl::sdpa);
  expect_close(fast, reference, what);
}

TEST(SdpaParity, VisionAllToAll) {
  torch::manual_seed(10);
  torch::Tensor q = torch::randn({2, 3, 9, 8}), k = torch::randn({2, 3, 9, 8}),
                v = torch::randn({2, 3, 9, 8});  // I = 2 images, 3 heads, 9 tokens
  torch::Tensor weights = torch::randn({2, 3, 9, 8});
  std::vector<torch::Tensor> inputs{q, k, v};
  Result reference = run(inputs, weights, [](const std::vector<torch::Tensor>& in) {
    return attend(in[0], {}, {}, in[1], in[2], {}, 0.3);
  });
  Result fast = run(inputs, weights, [](const std::vector<torch::Tensor>& in) {
    return sdpa(in[0], in[1], in[2], {}, false, 0.3);
  });
  expect_close(fast, reference, "vision");
}

TEST(SdpaParity, CausalPrefixWithGroupedQueryHeads) {
  torch::manual_seed(11);
  // H = 4 query heads on Hkv = 2 key/value heads, P = 7 prompt tokens
  compare_layer(torch::randn({1, 4, 7, 8}), torch::randn({1, 2, 7, 8}), torch::randn({1, 2, 7, 8}),
                {}, {}, {}, "causal prefix");
}

TEST(SdpaParity, PaddedBatchIncludingAFullyPaddedRow) {
  torch::manual_seed(12);
  // Row 0 right-padded, row 1 left-padded (its first query sees no real key: uniform as the
  // reference), row 2 without padding.
  torch::Tensor key_mask =
      torch::tensor({{1, 1, 1, 1, 0, 0}, {0, 0, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1}});
  compare_layer(torch::randn({3, 4, 6, 8}), torch::randn({3, 2, 6, 8}), torch::randn({3, 2, 6, 8}),
                {}, {}, key_mask, "padded batch");
}

TEST(SdpaParity, DecodingStepsWithAKvCache) {
  torch::manual_seed(13);
  // 3 rows, each with its own 6 cached tokens (one padded), one new token
  torch::Tensor key_mask =
      torch::tensor({{1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 0, 1, 1}, {1, 1, 1, 1, 1, 1, 1}});
  compare_layer(torch::randn({3, 4, 1, 8}), torch::randn({3, 2, 1, 8}), torch::randn({3, 2, 1, 8}),
                torch::randn({3, 2, 6, 8}), torch::randn({3, 2, 6, 8}), key_mask, "decode, padded");
  compare_layer(torch::randn({3, 4, 1, 8}), torch::randn({3, 2, 1, 8}), torch::randn({3, 2, 1, 8}),
                torch::randn({3, 2, 6, 8}), torch::randn({3, 2, 6, 8}), {}, "decode");
  // two new tokens per row on the cache (a chunked prefill)
  compare_layer(torch::randn({3, 4, 2, 8}), torch::randn({3, 2, 2, 8}), torch::randn({3, 2, 2, 8}),
                torch::randn({3, 2, 6, 8}), torch::randn({3, 2, 6, 8}), {}, "two new tokens");
}

TEST(SdpaParity, AnswersOverASharedPrefixPacked) {
  torch::manual_seed(14);
  // N = 4 answers of T = 5 tokens (right-padded to lengths 5, 2, 4, 1) on one P = 9 prefix
  torch::Tensor answers = torch::tensor(
      {{1, 1, 1, 1, 1}, {1, 1, 0, 0, 0}, {1, 1, 1, 1, 0}, {1, 0, 0, 0, 0}}, torch::kInt64);
  torch::Tensor key_mask = torch::cat({torch::ones({4, 9}, torch::kInt64), answers}, 1);
  compare_layer(torch::randn({4, 4, 5, 8}), torch::randn({4, 2, 5, 8}), torch::randn({4, 2, 5, 8}),
                torch::randn({1, 2, 9, 8}), torch::randn({1, 2, 9, 8}), key_mask, "shared prefix");
  compare_layer(torch::randn({4, 4, 5, 8}), torch::randn({4, 2, 5, 8}), torch::randn({4, 2, 5, 8}),
                torch::randn({1, 2, 9, 8}), torch::randn({1, 2, 9, 8}), {},
                "shared prefix, no padding");
  // one token per answer on the shared prefix (the first decoding step of N samples)
  compare_layer(torch::randn({4, 4, 1, 8}), torch::randn({4, 2, 1, 8}), torch::randn({4, 2, 1, 8}),
                torch::randn({1, 2, 9, 8}), torch::randn({1, 2, 9, 8}), {}, "shared prefix, T = 1");
}

TEST(SdpaParity, GroupedQueryFoldEqualsTheReference) {
  torch::manual_seed(15);
  torch::Tensor q = torch::randn({2, 6, 5, 8}), k = torch::randn({2, 2, 5, 8}),
                v = torch::randn({2, 2, 5, 8});  // g = 3
  torch::Tensor mask = torch::rand({2, 1, 5, 5}) > 0.3;
  mask = mask | torch::eye(5, torch::kBool);  // every row keeps a key
  torch::Tensor weights = torch::randn({2, 6, 5, 8});
  std::vector<torch::Tensor> inputs{q, k, v};
  for (bool causal : {false, true}) {
    torch::Tensor m = causal ? torch::Tensor() : mask;
    Result folded = run(inputs, weights, [&](const std::vector<torch::Tensor>& in) {
      return sdpa(in[0], in[1], in[2], m, causal, 0.4, /*fold_groups=*/true);
    });
    torch::Tensor allowed =
        causal ? torch::ones({5, 5}, torch::kBool).tril().view({1, 1, 5, 5}) : m;
    Result reference = run(inputs, weights, [&](const std::vector<torch::Tensor>& in) {
      return attend(in[0], {}, {}, in[1], in[2], allowed, 0.4);
    });
    expect_close(folded, reference, causal ? "fold, causal" : "fold, mask");
  }
}

/// The whole small model both ways: a padded batch forward and the shared-prefix answer
/// log-probs, with every parameter's gradient.
TEST(SdpaParity, WholeModelForwardAndAnswerLogps) {
  LlavaModel model = test::make_small_llava(3, test::small_llava_config());
  torch::manual_seed(16);
  torch::Tensor pixels = torch::randn({1, 3, 16, 16});
  torch::Tensor prompt = test::small_prompt_ids();  // (1, 9)
  torch::Tensor answers = torch::randint(0, 49, {3, 4}, torch::kInt64);
  torch::Tensor answer_mask = torch::tensor({{1, 1, 1, 1}, {1, 1, 0, 0}, {1, 1, 1, 0}});
  torch::Tensor ids = torch::cat({prompt, torch::tensor({{7, 8, 0}})}, 1);  // (1, 12), 1 padded
  torch::Tensor attention_mask = torch::ones({1, 12}, torch::kInt64);
  attention_mask[0][11] = 0;
  torch::Tensor logit_weights = torch::randn({1, 12, 50});
  torch::Tensor logp_weights = torch::randn({3, 4});

  auto with = [&](AttentionImpl impl) {
    AttentionImplGuard guard(impl);
    test::clear_gradients(*model);
    torch::Tensor logits = model->forward(ids, pixels, attention_mask);  // (1, 12, V)
    PrefixState prefix = model->encode_prefix(prompt, pixels);
    torch::Tensor logps = model->answer_logps(prefix, answers, answer_mask, 2);  // (3, 4)
    ((logits * logit_weights).sum() + (logps * logp_weights).sum()).backward();
    return std::make_tuple(logits.detach(), logps.detach(), test::parameter_gradients(*model));
  };
  auto [ref_logits, ref_logps, ref_grads] = with(AttentionImpl::reference);
  auto [logits, logps, grads] = with(AttentionImpl::sdpa);
  EXPECT_TRUE(torch::allclose(logits, ref_logits, kTol, kTol))
      << (logits - ref_logits).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(logps, ref_logps, kTol, kTol))
      << (logps - ref_logps).abs().max().item<double>();
  ASSERT_EQ(grads.size(), ref_grads.size());
  for (const auto& [name, grad] : ref_grads) {
    EXPECT_TRUE(torch::allclose(grads.at(name), grad, kTol, kTol))
        << name << " differs by " << (grads.at(name) - grad).abs().max().item<double>();
  }
}

TEST(SdpaParity, ImplementationComesFromTheEnvironmentOrTheSetter) {
  AttentionImplGuard guard(AttentionImpl::reference);
  EXPECT_EQ(attention_impl(), AttentionImpl::reference);
  {
    AttentionImplGuard inner(AttentionImpl::sdpa);
    EXPECT_EQ(attention_impl(), AttentionImpl::sdpa);
    AttentionMask mask = make_attention_mask(0, 0, 1, 4, {}, torch::kCPU);
    EXPECT_TRUE(mask.causal);  // no mask tensor: the kernel's own causal masking
    EXPECT_FALSE(mask.allowed.defined());
  }
  EXPECT_EQ(attention_impl(), AttentionImpl::reference);
  AttentionMask mask = make_attention_mask(0, 0, 1, 4, {}, torch::kCPU);
  EXPECT_FALSE(mask.causal);
  ASSERT_TRUE(mask.allowed.defined());
  EXPECT_EQ(mask.allowed.sizes(), (std::vector<std::int64_t>{1, 1, 4, 4}));
}

TEST(SdpaParity, ConfigKeyChoosesUnlessTheEnvironmentDoes) {
  // model.attention (applied by load_model): sdpa / reference select, auto keeps the choice;
  // PERPO_ATTENTION, when set (ctest's *_sdpa runs), overrides the config.
  AttentionImplGuard guard(AttentionImpl::reference);
  const char* environment = std::getenv("PERPO_ATTENTION");
  const bool overridden = environment != nullptr && *environment != '\0';
  apply_attention_setting("sdpa");
  EXPECT_EQ(attention_impl(), overridden ? AttentionImpl::reference : AttentionImpl::sdpa);
  set_attention_impl(AttentionImpl::sdpa);
  apply_attention_setting("reference");
  EXPECT_EQ(attention_impl(), overridden ? AttentionImpl::sdpa : AttentionImpl::reference);
  const AttentionImpl before = attention_impl();
  apply_attention_setting("auto");
  EXPECT_EQ(attention_impl(), before);
  EXPECT_THROW(apply_attention_setting("flash"), Error);
}

TEST(SdpaParity, PackedMaskLetsEachAnswerSeeThePrefixAndItselfCausally) {
  AttentionImplGuard guard(AttentionImpl::sdpa);
  // N = 2 answers of T = 2 tokens on P = 1 prefix token; answer 1's second token is padding
  torch::Tensor key_mask = torch::tensor({{1, 1, 1}, {1, 1, 0}});
  AttentionMask mask = make_attention_mask(1, 1, 2, 2, key_mask, torch::kCPU);
  ASSERT_TRUE(mask.shared_past);
  // columns: prefix, answer 0 token 0, answer 0 token 1, answer 1 token 0, answer 1 token 1
  torch::Tensor expected =
      torch::tensor({{1, 1, 0, 0, 0}, {1, 1, 1, 0, 0}, {1, 0, 0, 1, 0}, {1, 0, 0, 1, 0}})
          .to(torch::kBool);
  EXPECT_TRUE(torch::equal(mask.sdpa_mask.view({4, 5}), expected)) << mask.sdpa_mask;
}

}  // namespace
}  // namespace perpo
