// The one chunked log-prob path (token_logps_from_hidden: logits a chunk at a time, only their
// logsumexp kept, recomputed in backward) equals a plain log_softmax + gather over the full
// logits, values and gradients, for every chunk size; and the model's answer log-probs, which go
// through it, do not depend on the chunk.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "perpo/model/llava.h"
#include "perpo/model/token_logps.h"
#include "small_llava.h"

namespace perpo {
namespace {

TEST(TokenLogps, ChunkedEqualsPlainLogSoftmaxGatherWithGradients) {
  torch::manual_seed(20);
  const torch::Tensor hidden0 = torch::randn({3, 7, 16});  // (B, T, H)
  const torch::Tensor weight0 = torch::randn({40, 16});    // (V, H)
  const torch::Tensor targets = torch::randint(0, 40, {3, 7}, torch::kInt64);
  const torch::Tensor loss_weights = torch::randn({3, 7});

  torch::Tensor hidden = hidden0.clone().requires_grad_(true);
  torch::Tensor weight = weight0.clone().requires_grad_(true);
  torch::Tensor plain = torch::log_softmax(torch::matmul(hidden, weight.t()), -1)
                            .gather(-1, targets.unsqueeze(-1))
                            .squeeze(-1);  // (B, T)
  (plain * loss_weights).sum().backward();
  const torch::Tensor plain_grad_hidden = hidden.grad().clone();
  const torch::Tensor plain_grad_weight = weight.grad().clone();

  for (std::int64_t chunk : {1, 4, 5, 21, 0}) {  // 0: one chunk
    torch::Tensor h = hidden0.clone().requires_grad_(true);
    torch::Tensor w = weight0.clone().requires_grad_(true);
    torch::Tensor chunked = token_logps_from_hidden(h, w, targets, chunk);
    EXPECT_TRUE(torch::allclose(chunked, plain.detach(), 1e-5, 1e-5)) << "chunk " << chunk;
    (chunked * loss_weights).sum().backward();
    EXPECT_TRUE(torch::allclose(h.grad(), plain_grad_hidden, 1e-5, 1e-5)) << "chunk " << chunk;
    EXPECT_TRUE(torch::allclose(w.grad(), plain_grad_weight, 1e-5, 1e-5)) << "chunk " << chunk;
  }
}

TEST(TokenLogps, AnswerLogpsEqualPlainLogSoftmaxOfTheModelsLogits) {
  LlavaModel model = test::make_small_llava(4, test::small_llava_config());
  torch::manual_seed(21);
  torch::Tensor pixels = torch::randn({1, 3, 16, 16});
  torch::Tensor prompt = test::small_prompt_ids();  // (1, 9)
  torch::Tensor answers = torch::randint(0, 49, {2, 3}, torch::kInt64);
  torch::Tensor mask = torch::tensor({{1, 1, 1}, {1, 1, 0}});
  PrefixState prefix = model->encode_prefix(prompt, pixels);
  for (std::int64_t chunk : {1, 2, 16}) {
    torch::Tensor logps = model->answer_logps(prefix, answers, mask, chunk);  // (2, 3)
    for (std::int64_t n = 0; n < 2; ++n) {
      // the plain way: full logits of prompt + answer n, log_softmax, gather
      torch::Tensor ids = torch::cat({prompt, answers.narrow(0, n, 1)}, 1);  // (1, 12)
      torch::Tensor logits = model->forward(ids, pixels);                    // (1, 12, V)
      torch::Tensor expected = torch::log_softmax(logits.narrow(1, 8, 3), -1)
                                   .gather(-1, answers.narrow(0, n, 1).unsqueeze(-1))
                                   .squeeze(-1)[0];  // (3)
      expected = expected * mask[n].to(torch::kFloat);
      EXPECT_TRUE(torch::allclose(logps[n], expected, 1e-5, 1e-5))
          << "chunk " << chunk << " answer " << n << ": " << logps[n] << " vs " << expected;
    }
  }
}

}  // namespace
}  // namespace perpo
