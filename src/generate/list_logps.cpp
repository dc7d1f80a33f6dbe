#include "perpo/generate/list_logps.h"

#include <torch/torch.h>

#include <algorithm>

#include "perpo/core/error.h"

namespace perpo {

namespace {

/// Eval mode and no-grad for the scope, training mode restored after.
class ScoringMode {
 public:
  explicit ScoringMode(VisionLanguageModel& model)
      : model_(model), was_training_(model.is_training()) {
    model_.eval();
  }
  ~ScoringMode() {
    if (was_training_) model_.train(true);
  }

 private:
  VisionLanguageModel& model_;
  bool was_training_;
  torch::NoGradGuard no_grad_;
};

}  // namespace

std::vector<double> list_logps(VisionLanguageModel& model, const ListExample& example,
                               const ModelImage& image, int chunk) {
  PERPO_CHECK(!example.prompt_ids.empty(), example.source.to_string(), ": empty prompt");
  ScoringMode scoring(model);
  const torch::TensorOptions options = model.weight_options();
  torch::Tensor prompt =
      torch::tensor(std::vector<std::int64_t>(example.prompt_ids.begin(), example.prompt_ids.end()))
          .to(options.device())
          .unsqueeze(0);  // (1, P)
  return list_logps(model, model.encode_prefix(prompt, model.join_images({image}).to(options)),
                    example.answer_ids, chunk);
}

std::vector<double> list_logps(VisionLanguageModel& model, const PrefixState& prefix,
                               const std::vector<std::vector<int>>& answer_ids, int chunk) {
  return answer_token_logps(model, prefix, answer_ids, chunk).sums;
}

AnswerLogps answer_token_logps(VisionLanguageModel& model, const PrefixState& prefix,
                               const std::vector<std::vector<int>>& answer_ids, int chunk) {
  PERPO_CHECK(chunk > 0, "list_logps chunk must be > 0");
  ScoringMode scoring(model);
  const torch::Device device = model.weight_options().device();
  AnswerLogps out;
  const auto N = static_cast<std::int64_t>(answer_ids.size());
  for (std::int64_t start = 0; start < N; start += chunk) {
    const std::int64_t count = std::min<std::int64_t>(chunk, N - start);
    std::int64_t longest = 1;
    for (std::int64_t n = start; n < start + count; ++n) {
      longest = std::max<std::int64_t>(longest, answer_ids[n].size());
    }
    std::vector<std::int64_t> ids_flat(count * longest, 0), mask_flat(count * longest, 0);
    for (std::int64_t n = 0; n < count; ++n) {
      const std::vector<int>& answer = answer_ids[start + n];
      for (std::size_t t = 0; t < answer.size(); ++t) {
        ids_flat[n * longest + t] = answer[t];
        mask_flat[n * longest + t] = 1;
      }
    }
    torch::Tensor ids = torch::tensor(ids_flat).view({count, longest});                 // (n, A)
    torch::Tensor mask = torch::tensor(mask_flat).view({count, longest});               // (n, A)
    torch::Tensor logps = model.answer_logps(prefix, ids.to(device), mask.to(device));  // (n, A)
    torch::Tensor totals = logps.to(torch::kDouble).sum(1).cpu();                       // (n)
    torch::Tensor tokens = logps.to(torch::kDouble).cpu().contiguous();                 // (n, A)
    for (std::int64_t n = 0; n < count; ++n) {
      out.sums.push_back(totals[n].item<double>());
      const double* row = tokens[n].data_ptr<double>();
      out.tokens.emplace_back(row, row + answer_ids[start + n].size());
    }
  }
  return out;
}

}  // namespace perpo
