// Log-probs of target tokens straight from decoder hidden states and the LM head weight, without
// ever holding the (rows, V) logits: the one chunked log-prob path of perpo (the model's answer
// log-probs and the loss module's token_logps_from_hidden are this function).
//
// Forward computes `chunk_rows` rows of logits at a time and keeps only their logsumexp (M,);
// backward recomputes each chunk's logits. The price is one extra (chunk, H) x (H, V) matmul per
// chunk in backward: bench_loss_logps measured +2% time at chunk 256 and +22% at chunk 64 against
// the plain path (M = 512, H = 512, V = 32000, 1 thread), with peak memory +208 / +131 MiB against
// +330 MiB. Rows outside the answers cost the same as answer rows: gather the answer positions
// first (index_select) when the prompt is long.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace perpo {

/// Same as log_softmax(hidden.matmul(weight.t()))[target] for hidden (..., H) and the LM head
/// weight (V, H) -> (...), in at least float32 (bf16/fp16 upcast; double stays double), computed
/// `chunk_rows` rows at a time in forward and in backward, with gradients for `hidden` and
/// `weight` (those that require them). chunk_rows <= 0 means one chunk. Targets outside [0, V)
/// are treated as 0 (mask them afterwards).
at::Tensor token_logps_from_hidden(const at::Tensor& hidden, const at::Tensor& weight,
                                   const at::Tensor& targets, std::int64_t chunk_rows);

/// Same arithmetic from logits already computed: logits (..., V), targets (...) -> (...), in at
/// least float32; targets outside [0, V) are treated as 0 (mask them afterwards). Throws
/// perpo::Error for non-integer targets or mismatched shapes.
at::Tensor token_logps_from_logits(const at::Tensor& logits, const at::Tensor& targets);

}  // namespace perpo
