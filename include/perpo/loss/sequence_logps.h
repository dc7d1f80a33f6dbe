// Log-probabilities of answer tokens and of whole answers, from logits or from hidden states.
//
// Shapes: B = sequences (e.g. the N answers of a list, flattened), T = positions, V = vocabulary,
// H = decoder width. Position t of `logits` / `hidden` predicts `targets[:, t]` (the caller shifts:
// logits of position t come from the input up to t, targets are the next tokens). `mask` is 1 on
// answer tokens and 0 on prompt, image and padding positions; masked targets may hold anything
// (e.g. -100 or a pad id): they are never gathered.
//
//   auto tokens = perpo::token_logps(logits, targets);            // (B, T)
//   perpo::SequenceLogps seq = perpo::reduce_token_logps(tokens, mask);
//   seq.sum;   // (B,) summed answer log-prob, what PerPO and DPO use
//   seq.mean;  // (B,) length-normalised (mean over answer tokens)
//
// For long answers or large vocabularies, skip the (B, T, V) logits entirely:
//
//   auto tokens = perpo::token_logps_from_hidden(hidden, lm_head_weight, targets, 1024);
//
// computes the same (B, T) log-probs 1024 rows at a time, forward AND backward (the backward
// recomputes each chunk's logits), so at most (chunk, V) logits exist at once. It lives in the
// model module (perpo/model/token_logps.h), which uses it for answer log-probs; this header
// re-exports it.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "perpo/model/token_logps.h"

namespace perpo {

/// Summed and length-normalised log-probs of each sequence's masked tokens.
struct SequenceLogps {
  at::Tensor sum;     // (B,) sum over answer tokens of log p(token)
  at::Tensor mean;    // (B,) sum / tokens; 0 for a sequence without answer tokens
  at::Tensor tokens;  // (B,) number of answer tokens, in the dtype of `sum`
};

/// Log-prob of each target token under `logits` (B, T, V) -> (B, T), computed as
/// logit[target] - logsumexp(logits) in at least float32 (bf16/fp16 logits are upcast).
/// Entries whose target is outside [0, V) (e.g. -100) come out as logit[0] - logsumexp: mask them.
at::Tensor token_logps(const at::Tensor& logits, const at::Tensor& targets);

/// Sums (and averages) `token_logps` (B, T) over `mask` (B, T; bool or 0/1 numbers).
/// Masked-out entries are zeroed with where(), so NaN/inf at padding cannot leak in.
SequenceLogps reduce_token_logps(const at::Tensor& token_logps, const at::Tensor& mask);

/// token_logps + reduce_token_logps in one call.
SequenceLogps sequence_logps(const at::Tensor& logits, const at::Tensor& targets,
                             const at::Tensor& mask);

/// Token-mean negative log-likelihood over `mask`, pooled over the batch:
/// -sum(token_logps * mask) / sum(mask); 0 when the mask is empty. The SFT objective.
at::Tensor masked_token_nll(const at::Tensor& token_logps, const at::Tensor& mask);

}  // namespace perpo
