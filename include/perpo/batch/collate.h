// Collation (module batch): encoded examples (perpo/data/examples.h) -> the tensors the model and
// the losses take.
//
// Shapes: B = examples in a batch, T = longest prompt + answer, N = answers of a list,
// P = prefix (prompt) length, A = longest answer of a list, H = W = image side.
//
// SFT (one forward over whole sequences, padding on the right):
//   input_ids      (B, T)        int64   prompt ids then answer ids, then pad
//   labels         (B, T)        int64   = input_ids on answer tokens, -100 elsewhere (prompt, pad)
//   attention_mask (B, T)        int64   1 on real tokens, 0 on padding
//   pixel_values   (B, 3, H, W)  float32
// labels are not shifted: the logit at position t predicts labels[t + 1] (as in transformers).
//
// Preference list (prefix-sharing forward: the prefix runs once, the N answers run on its
// key/value cache):
//   prefix_ids     (P)           int64   BOS, template, image placeholder x image_tokens
//   pixel_values   (1, 3, H, W)  float32
//   answer_ids     (N, A)        int64   answer i, then pad
//   answer_mask    (N, A)        int64   1 on answer tokens (EOS included), 0 on padding
//   rewards        (N)           float32
//   ref_logps      (N)           float32 (undefined tensor when the list has none)
// The first answer token is predicted by the prefix's last position; answer token j > 0 by
// answer position j - 1. Padding holds the tokenizer's pad id (0 when it has none): it is masked.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "perpo/data/examples.h"
#include "perpo/image/image.h"

namespace perpo {

/// Label value that carries no loss (transformers' ignore_index).
inline constexpr int kIgnoreLabel = -100;

struct SftBatch {
  at::Tensor input_ids;       // (B, T) int64
  at::Tensor labels;          // (B, T) int64, kIgnoreLabel outside the answers
  at::Tensor attention_mask;  // (B, T) int64
  at::Tensor pixel_values;    // (I, 3, H, W) float32, one per record with an image; or undefined
  at::Tensor answer_start;    // (B) int64: where each answer starts (its prompt's length)
  at::Tensor answer_mask;     // (B, A) int64: 1 on each answer's tokens (right padding)
  std::int64_t tokens = 0;    // prompt + answer tokens (no padding)
};

struct ListBatch {
  at::Tensor prefix_ids;    // (P) int64
  at::Tensor pixel_values;  // (1, 3, H, W) float32
  at::Tensor answer_ids;    // (N, A) int64
  at::Tensor answer_mask;   // (N, A) int64
  at::Tensor rewards;       // (N) float32
  at::Tensor ref_logps;     // (N) float32, or undefined
};

/// The pixels as a (3, H, W) float32 tensor (a copy).
at::Tensor pixels_to_tensor(const PixelValues& pixels);

/// Right-padded rows of prompt + answer. `pixels` holds the images of the examples that have one,
/// in order (the model splices image i into the i-th image placeholder run), so at most one per
/// example (>= 1 examples); all images must share one size. `pad_id` < 0 pads with 0.
SftBatch collate_sft(const std::vector<SftExample>& examples,
                     const std::vector<PixelValues>& pixels, int pad_id);

/// One list; lists of a step are collated one by one (their prefixes differ in length).
ListBatch collate_list(const ListExample& example, const PixelValues& pixels, int pad_id);

}  // namespace perpo
