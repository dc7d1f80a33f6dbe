// Padding: the pad token's embedding row takes no gradient (transformers' LlamaModel builds
// embed_tokens with padding_idx = pad_token_id), and answer_logps refuses masks that are not
// right-padded instead of silently computing the wrong log-probs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model_reference.h"
#include "perpo/core/error.h"
#include "perpo/model/llava.h"
#include "perpo/model/model_config.h"
#include "small_llava.h"
#include "test_util.h"

namespace perpo {
namespace {
using ::testing::HasSubstr;

constexpr int kPad = 3;

TEST(PadToken, EmbeddingRowOfThePadTokenGetsNoGradient) {
  ModelConfig config = test::small_llava_config();
  config.text.pad_token_id = kPad;
  LlavaModel model = test::make_small_llava(5, config);  // untied: lm_head is its own weight
  model->train();
  // The pad id appears as a real token (attention mask 1), next to ids 7 and 11.
  torch::Tensor ids = torch::tensor({{1, kPad, 7, kPad, 11}, {7, 11, kPad, 1, 1}}, torch::kInt64);
  torch::manual_seed(1);
  torch::Tensor weights = torch::randn({2, 5, config.text.vocab_size});
  (model->forward(ids) * weights).sum().backward();
  torch::Tensor grad = model->language_model->embed_tokens->weight.grad();  // (V, C)
  EXPECT_EQ(grad[kPad].abs().max().item<double>(), 0.0);
  for (int used : {1, 7, 11}) EXPECT_GT(grad[used].abs().max().item<double>(), 0.0) << used;
  EXPECT_EQ(grad[20].abs().max().item<double>(), 0.0);  // an id not in the input
}

TEST(PadToken, WithoutAPadIdEveryUsedRowLearns) {
  ModelConfig config = test::small_llava_config();
  config.text.pad_token_id = -1;  // none
  LlavaModel model = test::make_small_llava(5, config);
  model->train();
  torch::Tensor ids = torch::tensor({{1, kPad, 7}}, torch::kInt64);
  model->forward(ids).pow(2).sum().backward();
  EXPECT_GT(model->language_model->embed_tokens->weight.grad()[kPad].abs().max().item<double>(),
            0.0);
}

TEST(AnswerMask, LeftPaddedOrHoledMasksAreRefused) {
  LlavaModel model = test::make_small_llava(5, test::small_llava_config());
  model->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor pixels = torch::randn({1, 3, 16, 16});
  PrefixState prefix = model->encode_prefix(test::small_prompt_ids(), pixels);
  torch::Tensor answers = torch::randint(0, test::kSmallImageToken, {2, 4}, torch::kInt64);
  // Right padding (and an empty answer) is fine.
  torch::Tensor right = torch::tensor({{1, 1, 1, 0}, {0, 0, 0, 0}});
  torch::Tensor logps = model->answer_logps(prefix, answers, right);
  EXPECT_EQ(logps[1].abs().sum().item<double>(), 0.0);
  // Left padding: row 1 starts with padding.
  torch::Tensor left = torch::tensor({{1, 1, 1, 1}, {0, 0, 1, 1}});
  std::string message = test::error_of([&] { model->answer_logps(prefix, answers, left); });
  EXPECT_THAT(message, HasSubstr("answer mask row 1 is not right-padded"));
  // A hole inside an answer.
  torch::Tensor holed = torch::tensor({{1, 0, 1, 0}, {1, 1, 1, 1}});
  EXPECT_THAT(test::error_of([&] { model->answer_logps(prefix, answers, holed); }),
              HasSubstr("answer mask row 0 is not right-padded"));
  EXPECT_THAT(test::error_of([&] {
                test::answer_logps_repeated(*model, test::small_prompt_ids(), pixels, answers,
                                            left);
              }),
              HasSubstr("answer mask row 1 is not right-padded"));
  // Values other than 0 and 1 are not a mask.
  torch::Tensor twos = torch::tensor({{2, 2, 0, 0}, {1, 0, 0, 0}});
  EXPECT_THAT(test::error_of([&] { model->answer_logps(prefix, answers, twos); }),
              HasSubstr("0 or 1"));
}

}  // namespace
}  // namespace perpo
