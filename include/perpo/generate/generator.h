// Batched decoding: several prompts at once, any number of answers per prompt, each prompt (image
// + text) run through the model once and shared by all its answers (segment_cache.h).
//
// Shape legend: R = prompts, P = longest prompt, B = answer rows, V = vocabulary.
//
//   std::vector<perpo::GenerationPrompt> prompts = ...;      // ids, pixels, one seed per answer
//   perpo::GenerationOptions options{.max_new_tokens = 32, .stop_ids = {tokenizer.eos_id()},
//                                    .sampler = perpo::SamplerOptions::from(config.sampling)};
//   auto answers = perpo::generate(*model, prompts, options);  // answers[r][n].ids
//
// Decoding runs under no-grad with the model in eval mode (restored afterwards). An answer stops
// at its first stop token (not included in `ids`) or after max_new_tokens tokens; finished rows
// are dropped from the batch once half of them are done.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "perpo/generate/sampler.h"
#include "perpo/model/kv_cache.h"
#include "perpo/model/vlm.h"

namespace perpo {

struct GenerationPrompt {
  std::vector<int> prompt_ids;       // BOS, template, image placeholder x image_tokens
  torch::Tensor pixel_values;        // the family's image (vlm.h), undefined for text only
  torch::Tensor grid_thw;            // Qwen2.5-VL's image_grid_thw (1, 3); LLaVA: undefined
  std::vector<std::uint64_t> seeds;  // one per answer wanted (answer_seed); greedy: any values
  std::string name;                  // names the prompt in errors, e.g. "data.jsonl:7 (id 17)"
};

struct GenerationOptions {
  int max_new_tokens = 32;    // answer length limit in tokens (stop token included)
  std::vector<int> stop_ids;  // e.g. {tokenizer.eos_id()}
  SamplerOptions sampler;     // greedy or sampling
  int pad_id = 0;             // id placed in prompt padding (masked; any valid id)
};

struct GeneratedAnswer {
  std::vector<int> ids;  // the answer's tokens, stop token excluded
  bool stopped = false;  // ended with a stop token (else it hit max_new_tokens)
};

struct GenerationStats {
  std::int64_t prompt_tokens = 0;     // real prompt tokens run through the model
  std::int64_t generated_tokens = 0;  // answer tokens produced (stop tokens included)
  std::int64_t steps = 0;             // decoder calls on the row batch
};

/// Prompts run once through the decoder, right-padded into one batch: what answers continue.
struct EncodedPrompts {
  KVCache kv;                         // per layer (R, Hkv, P, D)
  torch::Tensor mask;                 // (R, P) bool, true on real tokens
  torch::Tensor last_hidden;          // (R, C) final-normed hidden state of each last real token
  torch::Tensor last_logits;          // (R, V) logits after each prompt's last real token
  std::vector<std::int64_t> lengths;  // real tokens of each prompt
  std::vector<std::int64_t> offsets;  // position offsets: continuation t at length + t + offset
};

/// Prompt r of `encoded` as a shared prefix for VisionLanguageModel::answer_logps (list_logps.h):
/// its keys/values are views of the batch's cache cut to its real tokens, so scoring answers after
/// decoding them runs no prompt again.
PrefixState prompt_prefix(const EncodedPrompts& encoded, std::int64_t r);

/// Throws perpo::Error (input) naming the prompt when its tokens plus `max_new_tokens` exceed
/// `context` positions (text_config.max_position_embeddings); `hint` says what the user can do.
void check_prompt_fits_context(const GenerationPrompt& prompt, int max_new_tokens, int context,
                               const std::string& hint);

/// Runs the prompts (ids and images) through the model once. Throws perpo::Error (input) naming
/// the prompt when it is empty or when prompt + max_new_tokens exceeds the model's context
/// (text_config.max_position_embeddings).
EncodedPrompts encode_prompts(VisionLanguageModel& model,
                              const std::vector<GenerationPrompt>& prompts,
                              const GenerationOptions& options);

/// Decodes answers continuing encoded prompts: `row_prompts` (ascending) says which prompt each
/// answer row continues, `row_seeds` its random stream. Returns one answer per row, in order.
std::vector<GeneratedAnswer> decode_rows(VisionLanguageModel& model, const EncodedPrompts& encoded,
                                         const std::vector<std::int64_t>& row_prompts,
                                         const std::vector<std::uint64_t>& row_seeds,
                                         const GenerationOptions& options,
                                         GenerationStats* stats = nullptr);

/// encode_prompts + decode_rows: answers[r] holds prompts[r].seeds.size() answers.
std::vector<std::vector<GeneratedAnswer>> generate(VisionLanguageModel& model,
                                                   const std::vector<GenerationPrompt>& prompts,
                                                   const GenerationOptions& options,
                                                   GenerationStats* stats = nullptr);

}  // namespace perpo
