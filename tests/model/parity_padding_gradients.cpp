// Parity with transformers in the settings users run (padded.safetensors of
// tools/make_model_fixtures.py): right-padded training batches, left-padded generation batches with
// position ids, and the gradients of summed answer log-probs, all against transformers in fp32.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "model_reference.h"
#include "perpo/model/checkpoint.h"
#include "perpo/model/llava.h"
#include "perpo/model/model_config.h"
#include "perpo/model/safetensors.h"
#include "test_paths.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;

fs::path fixture_dir(const std::string& name) {
  return fs::path(test::kTestsDir) / "fixtures" / "model" / name;
}

struct Loaded {
  ModelConfig config;
  LlavaModel model{nullptr};
  torch::Tensor pixel_values;  // (2, 3, H, W)
  std::shared_ptr<SafetensorsFile> padded;

  torch::Tensor get(const std::string& name) const { return padded->tensor(name).clone(); }
};

Loaded load(const std::string& name) {
  Loaded f;
  f.config = load_model_config(fixture_dir(name));
  f.model = LlavaModel(f.config);
  load_weights(*f.model, fixture_dir(name), &f.config);
  f.model->eval();
  f.pixel_values =
      SafetensorsFile(fixture_dir(name) / "inputs.safetensors").tensor("pixel_values").clone();
  f.padded = std::make_shared<SafetensorsFile>(fixture_dir(name) / "padded.safetensors");
  return f;
}

/// Largest |a - b| over the positions where mask (B, S) is 1; a, b (B, S, V).
double max_diff_at_real_tokens(const torch::Tensor& a, const torch::Tensor& b,
                               const torch::Tensor& mask) {
  torch::Tensor real = mask.to(torch::kBool).unsqueeze(-1).expand_as(a);
  return (a - b).abs().masked_select(real).max().item<double>();
}

class PaddedParity : public ::testing::TestWithParam<std::string> {};

TEST_P(PaddedParity, RightPaddedBatchMatchesTransformers) {
  Loaded f = load(GetParam());
  torch::NoGradGuard no_grad;
  torch::Tensor mask = f.get("right_mask");
  ASSERT_EQ(mask[1].sum().item<std::int64_t>(), mask.size(1) - 4);  // row 1 really is padded
  torch::Tensor logits = f.model->forward(f.get("right_ids"), f.pixel_values, mask);  // (B, S, V)
  torch::Tensor expected = f.get("right_logits");
  ASSERT_EQ(logits.sizes(), expected.sizes());
  EXPECT_LT(max_diff_at_real_tokens(logits, expected, mask), 1e-4);
}

TEST_P(PaddedParity, LeftPaddedBatchWithPositionIdsMatchesTransformers) {
  Loaded f = load(GetParam());
  torch::NoGradGuard no_grad;
  torch::Tensor mask = f.get("left_mask");
  ASSERT_EQ(mask[1][0].item<std::int64_t>(), 0);  // row 1 starts with padding
  torch::Tensor logits =
      f.model->forward(f.get("left_ids"), f.pixel_values, mask, f.get("left_positions"));
  EXPECT_LT(max_diff_at_real_tokens(logits, f.get("left_logits"), mask), 1e-4);
  // The real tokens of the left-padded row see what the right-padded row's real tokens see.
  torch::Tensor right = f.get("right_logits");
  const auto S = mask.size(1);
  EXPECT_LT(
      (logits[1].narrow(0, 4, S - 4) - right[1].narrow(0, 0, S - 4)).abs().max().item<double>(),
      1e-4);
}

/// Relative error of `got` against `expected`: |got - expected| / |expected| (Frobenius norms).
double relative_error(const torch::Tensor& got, const torch::Tensor& expected) {
  return (got - expected).norm().item<double>() / expected.norm().item<double>();
}

TEST_P(PaddedParity, AnswerLogProbsAndGradientsMatchTransformers) {
  for (bool shared_prefix : {true, false}) {
    SCOPED_TRACE(shared_prefix ? "prefix sharing" : "repeated prefix");
    Loaded f = load(GetParam());
    torch::Tensor prompt = SafetensorsFile(fixture_dir(GetParam()) / "inputs.safetensors")
                               .tensor("input_ids")
                               .narrow(0, 0, 1)
                               .clone();                    // (1, P)
    torch::Tensor pixels = f.pixel_values.narrow(0, 0, 1);  // (1, 3, H, W)
    torch::Tensor answers = f.get("answer_ids"), mask = f.get("answer_mask");
    torch::Tensor logps =
        shared_prefix
            ? f.model->answer_logps(f.model->encode_prefix(prompt, pixels), answers, mask, 2)
            : test::answer_logps_repeated(*f.model, prompt, pixels, answers, mask, 2);  // (N, T)
    torch::Tensor expected = f.get("answer_logps");
    EXPECT_LT((logps - expected).abs().max().item<double>(), 1e-4);
    logps.sum().backward();

    auto params = f.model->named_parameters();
    int compared = 0;
    for (const std::string& key : f.padded->names()) {
      if (key.rfind("grad.", 0) != 0) continue;
      const std::string name = key.substr(5);
      ASSERT_TRUE(params.contains(name)) << name;
      torch::Tensor grad = params[name].grad();
      ASSERT_TRUE(grad.defined()) << name;
      torch::Tensor reference = f.get(key);
      ASSERT_GT(reference.abs().max().item<double>(), 0.0) << name;
      EXPECT_LT(relative_error(grad, reference), 1e-4) << name;
      ++compared;
    }
    EXPECT_EQ(compared, f.config.tie_word_embeddings ? 6 : 7);
    // The pad id is a real token of answer 0: with an untied head, transformers gives its
    // embedding row no gradient at all (padding_idx), and so must perpo.
    const int pad = f.config.text.pad_token_id;
    ASSERT_EQ(pad, 0);
    ASSERT_EQ(answers[0][2].item<std::int64_t>(), pad);
    torch::Tensor pad_row = params["language_model.embed_tokens.weight"].grad()[pad];
    if (!f.config.tie_word_embeddings) {
      EXPECT_EQ(pad_row.abs().max().item<double>(), 0.0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PaddedParity,
                         ::testing::Values("tiny_old_untied_gqa", "tiny_new_tied",
                                           "tiny_tf5_rope"));

}  // namespace
}  // namespace perpo
