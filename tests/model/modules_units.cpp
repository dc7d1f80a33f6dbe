// Unit tests of the model's building blocks with hand-worked values.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "perpo/core/error.h"
#include "perpo/model/activations.h"
#include "perpo/model/attention.h"
#include "perpo/model/llama.h"
#include "perpo/model/llava.h"
#include "perpo/model/recompute.h"

namespace perpo {
namespace {

TEST(Activations, HandWorkedValues) {
  torch::Tensor x = torch::tensor({1.0});
  // quick_gelu(1) = 1 * sigmoid(1.702) = 1 / (1 + e^-1.702) = 1 / 1.182319 = 0.845796
  EXPECT_NEAR(apply_activation("quick_gelu", x).item<double>(), 0.845796, 1e-5);
  // silu(1) = 1 / (1 + e^-1) = 0.731059
  EXPECT_NEAR(apply_activation("silu", x).item<double>(), 0.731059, 1e-5);
  // gelu(1) = 1 * Phi(1) = 0.841345
  EXPECT_NEAR(apply_activation("gelu", x).item<double>(), 0.841345, 1e-5);
  EXPECT_THROW(apply_activation("gelu_fast_typo", x), Error);
}

TEST(RmsNorm, HandWorkedValues) {
  RmsNorm norm(2, 0.0);
  {
    torch::NoGradGuard no_grad;
    norm->weight.copy_(torch::tensor({1.0, 2.0}));
  }
  // x = [3, 4]: mean(x^2) = 12.5, 1/sqrt(12.5) = 0.282843 -> [0.848528, 1.131371] * [1, 2]
  torch::Tensor y = norm(torch::tensor({{3.0, 4.0}}));
  EXPECT_NEAR(y[0][0].item<double>(), 0.848528, 1e-5);
  EXPECT_NEAR(y[0][1].item<double>(), 2.262742, 1e-5);
}

TEST(RmsNorm, OneAutogradNodeGivesAutogradsValues) {
  // RmsNorm records one node; its output and the gradients equal autograd's through the plain
  // formula, in fp32 and bf16, with x also feeding a residual (its gradient parts are added in
  // autograd's order), and with only x or only the weight trained.
  torch::manual_seed(9);
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    for (const int trained : {3, 1, 2}) {  // bit 0: x, bit 1: the weight
      const torch::Tensor x0 = torch::randn({2, 5, 16}).to(dtype);
      const torch::Tensor w0 = (1 + 0.3 * torch::randn({16})).to(dtype);
      const torch::Tensor upstream = torch::randn({2, 5, 16}).to(dtype);
      const auto run = [&](bool one_node, torch::Tensor& x, torch::Tensor& w) {
        x = x0.clone().requires_grad_((trained & 1) != 0);
        RmsNorm norm(16, 1e-5);
        norm->to(dtype);
        {
          torch::NoGradGuard no_grad;
          norm->weight.copy_(w0);
        }
        norm->weight.requires_grad_((trained & 2) != 0);
        w = norm->weight;
        torch::Tensor y;
        if (one_node) {
          y = norm(x);
          EXPECT_EQ(y.grad_fn()->next_edges().size(), 3u);  // x, x, weight: one node
        } else {  // the plain formula, as autograd records it
          torch::Tensor x32 = x.to(torch::kFloat);
          torch::Tensor normed = x32 * torch::rsqrt(x32.pow(2).mean(-1, true) + 1e-5);
          y = norm->weight * normed.to(dtype);
        }
        ((x + y) * upstream).sum().backward();  // x: the norm's input and a residual
        return y.detach();
      };
      torch::Tensor x_one, w_one, x_plain, w_plain;
      const torch::Tensor y_one = run(true, x_one, w_one);
      const torch::Tensor y_plain = run(false, x_plain, w_plain);
      EXPECT_TRUE(torch::equal(y_one, y_plain)) << dtype;
      if ((trained & 1) != 0) EXPECT_TRUE(torch::equal(x_one.grad(), x_plain.grad())) << dtype;
      if ((trained & 2) != 0) EXPECT_TRUE(torch::equal(w_one.grad(), w_plain.grad())) << dtype;
      EXPECT_EQ(x_one.grad().defined(), (trained & 1) != 0);
      EXPECT_EQ(w_one.grad().defined(), (trained & 2) != 0);
    }
  }
}

TEST(Rotary, RotateHalfConvention) {
  // D = 4: pairs (0, 2) and (1, 3). Angle pi/2 on pair 0, angle 0 on pair 1.
  torch::Tensor x = torch::tensor({1.0, 2.0, 3.0, 4.0}).view({1, 1, 1, 4});
  const double half_pi = M_PI / 2;
  torch::Tensor angles = torch::tensor({half_pi, 0.0, half_pi, 0.0}).view({1, 1, 1, 4});
  // rotate_half(x) = [-3, -4, 1, 2]; x*cos + rotate_half(x)*sin = [0-3, 2-0, 0+1, 4+0]
  torch::Tensor y = apply_rotary(x, angles.cos(), angles.sin()).flatten();
  std::vector<double> expected = {-3.0, 2.0, 1.0, 4.0};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y[i].item<double>(), expected[i], 1e-6);
}

TEST(Rotary, OneAutogradNodeGivesAutogradsValues) {
  // apply_rotary records one node for x; its output and x's gradient equal what autograd gives
  // through the plain formula's seven nodes, in fp32 and bf16, with per-row tables.
  torch::manual_seed(5);
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    torch::Tensor angles = torch::randn({2, 1, 5, 8}) * 3;  // (B, 1, T, D): a table per row
    const torch::Tensor cos = angles.cos().to(dtype), sin = angles.sin().to(dtype);
    const torch::Tensor x0 = torch::randn({2, 3, 5, 8}).to(dtype);  // (B, H, T, D)
    const torch::Tensor upstream = torch::randn({2, 3, 5, 8}).to(dtype);
    torch::Tensor x = x0.clone().requires_grad_(true);
    torch::Tensor y = apply_rotary(x, cos, sin);
    ASSERT_EQ(y.grad_fn()->next_edges().size(), 3u);  // x, cos, sin: one node
    EXPECT_EQ(y.grad_fn()->next_edges()[0].function.get(),
              torch::autograd::impl::grad_accumulator(x).get());
    (y * upstream).sum().backward();

    torch::Tensor plain_x = x0.clone().requires_grad_(true);
    torch::Tensor rotated = torch::cat({-plain_x.narrow(-1, 4, 4), plain_x.narrow(-1, 0, 4)}, -1);
    torch::Tensor plain = plain_x * cos + rotated * sin;
    (plain * upstream).sum().backward();
    EXPECT_TRUE(torch::equal(y, plain));
    EXPECT_TRUE(torch::equal(x.grad(), plain_x.grad())) << dtype;
    // Without a gradient to take, the plain formula (no node).
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(apply_rotary(x0, cos, sin), plain.detach()));
  }
}

TEST(Rotary, TablesFollowThetaAndLinearScaling) {
  TextConfig config;
  config.hidden_size = 8;
  config.num_attention_heads = 2;  // D = 4: inv_freq = [1, 10000^-0.5] = [1, 0.01]
  RotaryEmbedding plain(config);
  auto [cos, sin] = plain.cos_sin(torch::tensor({{0, 2}}, torch::kInt64), torch::kFloat);
  ASSERT_EQ(cos.sizes(), (std::vector<int64_t>{1, 1, 2, 4}));
  EXPECT_NEAR(cos[0][0][1][0].item<double>(), std::cos(2.0), 1e-6);   // angle 2 * 1
  EXPECT_NEAR(sin[0][0][1][1].item<double>(), std::sin(0.02), 1e-6);  // angle 2 * 0.01
  EXPECT_NEAR(cos[0][0][1][2].item<double>(), std::cos(2.0), 1e-6);   // halves repeat
  config.rope_scaling_type = "linear";
  config.rope_scaling_factor = 2.0;  // positions divided by 2
  RotaryEmbedding scaled(config);
  auto [cos2, sin2] = scaled.cos_sin(torch::tensor({{2}}, torch::kInt64), torch::kFloat);
  EXPECT_NEAR(cos2[0][0][0][0].item<double>(), std::cos(1.0), 1e-6);
  config.rope_scaling_type = "yarn";
  EXPECT_THROW(RotaryEmbedding{config}, Error);
}

TEST(Attention, SharedKeysEqualRepeatedKeys) {
  torch::manual_seed(0);
  torch::Tensor q = torch::randn({3, 4, 2, 8});  // B = 3, H = 4, T = 2
  torch::Tensor k = torch::randn({1, 2, 5, 8});  // shared, Hkv = 2, S = 5
  torch::Tensor v = torch::randn({1, 2, 5, 8});
  torch::Tensor k_full = k.expand({3, -1, -1, -1});
  // transformers' repeat_kv: query head h reads kv head h / 2
  torch::Tensor k_heads = k_full.repeat_interleave(2, 1);  // (3, 4, 5, 8)
  torch::Tensor expected_scores = torch::matmul(q, k_heads.transpose(-1, -2));
  EXPECT_TRUE(torch::allclose(grouped_scores(q, k), expected_scores, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(grouped_scores(q, k_full.contiguous()), expected_scores, 1e-5, 1e-6));
  torch::Tensor probs = torch::softmax(expected_scores, -1);
  torch::Tensor expected_out =
      torch::matmul(probs, v.expand({3, -1, -1, -1}).repeat_interleave(2, 1));
  EXPECT_TRUE(torch::allclose(grouped_values(probs, v), expected_out, 1e-5, 1e-6));
}

TEST(Attention, AllowedMaskIsCausalOverNewKeysAndHonoursPadding) {
  // 2 past keys, 3 new tokens; key 4 (the last new one) is padding.
  torch::Tensor allowed =
      attention_allowed(2, 3, torch::tensor({{1, 1, 1, 1, 0}}), torch::kCPU);  // (1, 1, 3, 5)
  torch::Tensor expected =
      torch::tensor({{1, 1, 1, 0, 0}, {1, 1, 1, 1, 0}, {1, 1, 1, 1, 0}}).to(torch::kBool);
  EXPECT_TRUE(torch::equal(allowed[0][0], expected));
}

TEST(Attention, PastPlusNewEqualsOneAttentionOverAllKeys) {
  torch::manual_seed(1);
  torch::Tensor q = torch::randn({2, 4, 3, 8});
  torch::Tensor k = torch::randn({2, 2, 7, 8}), v = torch::randn({2, 2, 7, 8});
  // all 7 keys at once (the last 3 are "new" and causal)
  torch::Tensor allowed = attention_allowed(4, 3, {}, torch::kCPU);
  torch::Tensor together = attend(q, {}, {}, k, v, allowed.narrow(-1, 0, 7), 0.3);
  torch::Tensor split = attend(q, k.narrow(2, 0, 4), v.narrow(2, 0, 4), k.narrow(2, 4, 3),
                               v.narrow(2, 4, 3), allowed, 0.3);
  EXPECT_TRUE(torch::allclose(together, split, 1e-5, 1e-6));
}

TEST(Recompute, GradientsEqualPlainAutograd) {
  torch::manual_seed(2);
  torch::Tensor weight = torch::randn({4, 4}, torch::requires_grad());
  torch::Tensor x = torch::randn({3, 4}, torch::requires_grad());
  torch::Tensor frozen = torch::randn({4});  // read by fn, needs no gradient
  auto fn = [&](const std::vector<torch::Tensor>& in) {
    torch::Tensor h = torch::tanh(torch::matmul(in[0], weight) + frozen);
    return std::vector<torch::Tensor>{h, h.pow(2).sum(-1)};
  };
  auto plain = fn({x});
  (plain[0].sum() + 2 * plain[1].sum()).backward();
  torch::Tensor gx = x.grad().clone(), gw = weight.grad().clone();
  x.mutable_grad() = torch::Tensor();
  weight.mutable_grad() = torch::Tensor();

  auto recomputed = recompute_in_backward(fn, {x}, {weight});
  EXPECT_TRUE(torch::allclose(recomputed[0], plain[0]));
  (recomputed[0].sum() + 2 * recomputed[1].sum()).backward();
  EXPECT_TRUE(torch::allclose(x.grad(), gx, 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(weight.grad(), gw, 1e-6, 1e-7));
}

TEST(Llava, ParameterNamesFollowTheCanonicalContract) {
  ModelConfig config;
  config.vision.hidden_size = 8;
  config.vision.intermediate_size = 8;
  config.vision.num_hidden_layers = 1;
  config.vision.num_attention_heads = 2;
  config.vision.image_size = 8;
  config.vision.patch_size = 4;
  config.text.vocab_size = 10;
  config.text.hidden_size = 8;
  config.text.intermediate_size = 8;
  config.text.num_hidden_layers = 1;
  config.text.num_attention_heads = 2;
  config.text.num_key_value_heads = 1;
  LlavaModel model(config);
  auto params = model->named_parameters();
  for (const char* name :
       {"vision_tower.vision_model.embeddings.patch_embedding.weight",
        "vision_tower.vision_model.embeddings.class_embedding",
        "vision_tower.vision_model.embeddings.position_embedding.weight",
        "vision_tower.vision_model.pre_layrnorm.weight",
        "vision_tower.vision_model.encoder.layers.0.self_attn.out_proj.bias",
        "vision_tower.vision_model.encoder.layers.0.mlp.fc2.weight",
        "vision_tower.vision_model.post_layernorm.bias", "multi_modal_projector.linear_1.bias",
        "multi_modal_projector.linear_2.weight", "language_model.embed_tokens.weight",
        "language_model.layers.0.self_attn.k_proj.weight",
        "language_model.layers.0.mlp.gate_proj.weight",
        "language_model.layers.0.post_attention_layernorm.weight", "language_model.norm.weight",
        "lm_head.weight"}) {
    EXPECT_TRUE(params.contains(name)) << name;
  }
  EXPECT_EQ(params["language_model.layers.0.self_attn.k_proj.weight"].size(0), 4);  // 1 kv head x 4
  EXPECT_FALSE(params.contains("vision_tower.vision_model.embeddings.patch_embedding.bias"));
  for (const auto& item : params) EXPECT_EQ(item.key().find("inv_freq"), std::string::npos);
  config.tie_word_embeddings = true;
  LlavaModel tied(config);
  EXPECT_FALSE(tied->named_parameters().contains("lm_head.weight"));
}

}  // namespace
}  // namespace perpo
