// The chunked hidden -> log-prob path: a custom autograd function that recomputes each chunk's
// logits in backward instead of keeping (M, V) alive; it saves only the logsumexp per row.
#include "perpo/model/token_logps.h"

#include <torch/torch.h>

#include <algorithm>

#include "perpo/core/error.h"

namespace perpo {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// Log-softmax arithmetic runs in double for double inputs and in float32 otherwise.
at::ScalarType compute_dtype(at::ScalarType dtype) {
  return dtype == at::kDouble ? at::kDouble : at::kFloat;
}

/// Targets outside [0, vocab) (ignore ids such as -100, pads beyond V) become 0 so gather is safe.
at::Tensor safe_targets(const at::Tensor& targets, std::int64_t vocab) {
  PERPO_CHECK(!at::isFloatingType(targets.scalar_type()) && targets.scalar_type() != at::kBool,
              "targets must hold integer token ids, got dtype ", targets.scalar_type());
  auto ids = targets.to(at::kLong);
  return torch::where((ids >= 0) & (ids < vocab), ids, torch::zeros_like(ids));
}

/// log p(target) for one chunk of logits (C, V) -> (C,), in the compute dtype; `log_norm` (C,)
/// receives logsumexp(logits) when given.
at::Tensor chunk_logps(const at::Tensor& logits, const at::Tensor& ids,
                       at::Tensor* log_norm_out = nullptr) {
  auto log_norm = logits.logsumexp(-1);                            // (C,)
  auto picked = logits.gather(-1, ids.unsqueeze(-1)).squeeze(-1);  // (C,)
  if (log_norm_out != nullptr) *log_norm_out = log_norm;
  return picked - log_norm;
}

class TokenLogpsFromHidden : public torch::autograd::Function<TokenLogpsFromHidden> {
 public:
  // hidden (M, H), weight (V, H), ids (M,) in [0, V). Returns (M,) log-probs.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden,
                            const at::Tensor& weight, const at::Tensor& ids,
                            std::int64_t chunk_rows) {
    const auto rows = hidden.size(0);
    const auto dtype = compute_dtype(hidden.scalar_type());
    auto out = torch::empty({rows}, hidden.options().dtype(dtype));       // (M,)
    auto log_norm = torch::empty({rows}, hidden.options().dtype(dtype));  // (M,)
    for (std::int64_t start = 0; start < rows; start += chunk_rows) {
      const auto end = std::min(rows, start + chunk_rows);
      auto logits = hidden.slice(0, start, end).matmul(weight.t()).to(dtype);  // (C, V)
      at::Tensor chunk_norm;
      out.slice(0, start, end).copy_(chunk_logps(logits, ids.slice(0, start, end), &chunk_norm));
      log_norm.slice(0, start, end).copy_(chunk_norm);
    }
    // Backward needs only the inputs and logsumexp per row (M,), never the logits.
    ctx->save_for_backward({hidden, weight, ids, log_norm});
    ctx->saved_data["chunk_rows"] = chunk_rows;
    return out;
  }

  // d log p(target) / d logits = onehot(target) - softmax(logits).
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto& hidden = saved[0];    // (M, H)
    const auto& weight = saved[1];    // (V, H)
    const auto& ids = saved[2];       // (M,)
    const auto& log_norm = saved[3];  // (M,) logsumexp of each row's logits
    const auto chunk_rows = ctx->saved_data["chunk_rows"].toInt();
    const auto dtype = compute_dtype(hidden.scalar_type());
    auto grad_out = grad_outputs[0].to(dtype);  // (M,)
    const bool want_hidden = ctx->needs_input_grad(0);
    const bool want_weight = ctx->needs_input_grad(1);

    at::Tensor grad_hidden, grad_weight;
    if (want_hidden) grad_hidden = torch::empty_like(hidden);  // (M, H)
    // Accumulate the weight gradient over chunks in at least float32, cast once at the end.
    if (want_weight) grad_weight = torch::zeros(weight.sizes(), weight.options().dtype(dtype));
    const auto rows = hidden.size(0);
    for (std::int64_t start = 0; start < rows && (want_hidden || want_weight);
         start += chunk_rows) {
      const auto end = std::min(rows, start + chunk_rows);
      auto chunk_hidden = hidden.slice(0, start, end);          // (C, H)
      auto logits = chunk_hidden.matmul(weight.t()).to(dtype);  // (C, V)
      auto g = grad_out.slice(0, start, end).unsqueeze(-1);     // (C, 1)
      // softmax = exp(logits - logsumexp), in place: one (C, V) buffer per chunk.
      auto grad_logits =
          logits.sub_(log_norm.slice(0, start, end).unsqueeze(-1)).exp_().mul_(-g);  // (C, V)
      grad_logits.scatter_add_(-1, ids.slice(0, start, end).unsqueeze(-1), g);
      if (want_hidden) {
        grad_hidden.slice(0, start, end)
            .copy_(grad_logits.to(weight.scalar_type()).matmul(weight));  // (C, H)
      }
      if (want_weight) {
        grad_weight.addmm_(grad_logits.t(), chunk_hidden.to(dtype));  // (V, H)
      }
    }
    if (want_weight) grad_weight = grad_weight.to(weight.scalar_type());
    return {grad_hidden, grad_weight, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor token_logps_from_hidden(const at::Tensor& hidden, const at::Tensor& weight,
                                   const at::Tensor& targets, std::int64_t chunk_rows) {
  PERPO_CHECK(hidden.dim() >= 2 && weight.dim() == 2 && hidden.size(-1) == weight.size(1),
              "token_logps_from_hidden: hidden ", hidden.sizes(),
              " must be (..., H) and the LM head ", weight.sizes(), " (V, H) with the same H");
  PERPO_CHECK(targets.sizes() == hidden.sizes().slice(0, hidden.dim() - 1),
              "token_logps_from_hidden: targets ", targets.sizes(), " must match hidden ",
              hidden.sizes(), " without the width dimension");
  PERPO_CHECK(hidden.scalar_type() == weight.scalar_type(), "token_logps_from_hidden: hidden is ",
              hidden.scalar_type(), " but the LM head is ", weight.scalar_type());
  auto flat_hidden = hidden.reshape({-1, hidden.size(-1)}).contiguous();  // (M, H)
  auto ids = safe_targets(targets, weight.size(0)).reshape({-1});         // (M,)
  const auto rows = flat_hidden.size(0);
  if (chunk_rows <= 0 || chunk_rows > rows) chunk_rows = std::max<std::int64_t>(rows, 1);
  auto flat = TokenLogpsFromHidden::apply(flat_hidden, weight, ids, chunk_rows);  // (M,)
  return flat.reshape(targets.sizes());                                           // (B, T)
}

at::Tensor token_logps_from_logits(const at::Tensor& logits, const at::Tensor& targets) {
  PERPO_CHECK(logits.dim() >= 2, "token_logps: logits must be (..., V), got ", logits.sizes());
  PERPO_CHECK(targets.sizes() == logits.sizes().slice(0, logits.dim() - 1), "token_logps: targets ",
              targets.sizes(), " must match logits ", logits.sizes(),
              " without the vocabulary dimension");
  const auto ids = safe_targets(targets, logits.size(-1));
  return chunk_logps(logits.to(compute_dtype(logits.scalar_type())), ids);  // (...)
}

}  // namespace perpo
