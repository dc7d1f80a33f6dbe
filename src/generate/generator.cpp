#include "perpo/generate/generator.h"

#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>

#include "perpo/core/error.h"
#include "perpo/generate/segment_cache.h"

namespace perpo {

namespace {

/// Puts the model in eval mode (no dropout) for the scope, restoring training mode after.
class EvalModeGuard {
 public:
  explicit EvalModeGuard(VisionLanguageModel& model)
      : model_(model), was_training_(model.is_training()) {
    model_.eval();
  }
  ~EvalModeGuard() {
    if (was_training_) model_.train(true);
  }

 private:
  VisionLanguageModel& model_;
  bool was_training_;
};

}  // namespace

void check_prompt_fits_context(const GenerationPrompt& prompt, int max_new_tokens, int context,
                               const std::string& hint) {
  const auto length = static_cast<std::int64_t>(prompt.prompt_ids.size());
  if (length + max_new_tokens > context) {
    throw input_error(prompt.name, ": the prompt has ", length, " tokens; with ", max_new_tokens,
                      " new tokens it exceeds the model's context of ", context,
                      " positions (text_config.max_position_embeddings)")
        .hint(hint);
  }
}

EncodedPrompts encode_prompts(VisionLanguageModel& model,
                              const std::vector<GenerationPrompt>& prompts,
                              const GenerationOptions& options) {
  PERPO_CHECK(!prompts.empty(), "encode_prompts needs at least one prompt");
  PERPO_CHECK_INPUT(options.max_new_tokens >= 1, "max_new_tokens must be >= 1, got ",
                    options.max_new_tokens);
  RECORD_USER_SCOPE("prefill");  // parts for a profiler (runtime/op_profile.h)
  EvalModeGuard eval_mode(model);
  // Inference mode, not only no-grad: no version counters or autograd metadata on the tensors
  // made here (the keys/values are read later in no-grad code only, never saved for backward).
  c10::InferenceMode inference;
  const auto R = static_cast<std::int64_t>(prompts.size());
  const auto context = static_cast<int>(model.context_length());
  std::int64_t longest = 0;
  for (const GenerationPrompt& prompt : prompts) {
    PERPO_CHECK_INPUT(!prompt.prompt_ids.empty(), prompt.name, ": the prompt has no tokens");
    check_prompt_fits_context(prompt, options.max_new_tokens, context,
                              "shorten the prompt, lower max_new_tokens, or skip such records with "
                              "data.on_bad_record=skip");
    longest = std::max(longest, static_cast<std::int64_t>(prompt.prompt_ids.size()));
  }
  const torch::TensorOptions options_f = model.weight_options();
  torch::Tensor ids = torch::full({R, longest}, options.pad_id, torch::kInt64);  // (R, P)
  torch::Tensor mask = torch::zeros({R, longest}, torch::kBool);                 // (R, P)
  std::vector<ModelImage> images;
  EncodedPrompts encoded;
  for (std::int64_t r = 0; r < R; ++r) {
    const GenerationPrompt& prompt = prompts[r];
    const auto length = static_cast<std::int64_t>(prompt.prompt_ids.size());
    ids[r]
        .narrow(0, 0, length)
        .copy_(torch::tensor(
            std::vector<std::int64_t>(prompt.prompt_ids.begin(), prompt.prompt_ids.end())));
    mask[r].narrow(0, 0, length).fill_(true);
    images.emplace_back(prompt.pixel_values, prompt.grid_thw);
    encoded.lengths.push_back(length);
  }
  ids = ids.to(options_f.device());
  mask = mask.to(options_f.device());
  PromptRun out = model.run_prompts(ids, mask, model.join_images(images).to(options_f));
  std::vector<std::int64_t> last(R);
  for (std::int64_t r = 0; r < R; ++r) last[r] = r * longest + encoded.lengths[r] - 1;
  torch::Tensor last_hidden = out.hidden.reshape({R * longest, -1})
                                  .index_select(0, torch::tensor(last).to(ids.device()));  // (R, C)
  encoded.last_logits = model.lm_logits(last_hidden);                                      // (R, V)
  encoded.last_hidden = last_hidden;
  encoded.kv = std::move(out.present);
  encoded.mask = mask;
  encoded.offsets = std::move(out.position_offsets);
  return encoded;
}

PrefixState prompt_prefix(const EncodedPrompts& encoded, std::int64_t r) {
  const auto R = static_cast<std::int64_t>(encoded.lengths.size());
  PERPO_CHECK(r >= 0 && r < R, "prompt_prefix: prompt ", r, " of ", R);
  PrefixState prefix;
  prefix.length = encoded.lengths[r];
  for (std::size_t layer = 0; layer < encoded.kv.keys.size(); ++layer) {
    prefix.kv.keys.push_back(
        encoded.kv.keys[layer].narrow(0, r, 1).narrow(2, 0, prefix.length));  // (1, Hkv, P_r, D)
    prefix.kv.values.push_back(
        encoded.kv.values[layer].narrow(0, r, 1).narrow(2, 0, prefix.length));  // (1, Hkv, P_r, D)
  }
  prefix.last_hidden = encoded.last_hidden.narrow(0, r, 1);  // (1, C)
  prefix.position_offset = encoded.offsets.at(static_cast<std::size_t>(r));
  return prefix;
}

std::vector<GeneratedAnswer> decode_rows(VisionLanguageModel& model, const EncodedPrompts& encoded,
                                         const std::vector<std::int64_t>& row_prompts,
                                         const std::vector<std::uint64_t>& row_seeds,
                                         const GenerationOptions& options, GenerationStats* stats) {
  const auto R = static_cast<std::int64_t>(encoded.lengths.size());
  const auto B = static_cast<std::int64_t>(row_prompts.size());
  PERPO_CHECK(row_seeds.size() == row_prompts.size(), "decode_rows: ", row_prompts.size(),
              " rows but ", row_seeds.size(), " seeds");
  PERPO_CHECK(options.max_new_tokens >= 1, "max_new_tokens must be >= 1");
  std::vector<GeneratedAnswer> answers(B);
  if (B == 0) return answers;
  std::vector<std::int64_t> counts(R, 0);
  for (std::int64_t b = 0; b < B; ++b) {
    PERPO_CHECK(row_prompts[b] >= 0 && row_prompts[b] < R &&
                    (b == 0 || row_prompts[b] >= row_prompts[b - 1]),
                "decode_rows needs ascending prompt indices below ", R);
    ++counts[row_prompts[b]];
  }
  EvalModeGuard eval_mode(model);
  c10::InferenceMode inference;  // as encode_prompts
  const torch::Device device = encoded.last_logits.device();
  const auto is_stop = [&](int id) {
    return std::find(options.stop_ids.begin(), options.stop_ids.end(), id) !=
           options.stop_ids.end();
  };

  std::vector<std::int64_t> active(B);  // current row -> answer index
  for (std::int64_t b = 0; b < B; ++b) active[b] = b;
  std::vector<bool> finished(B, false);
  std::int64_t unfinished = B;
  SegmentedKVCache cache(encoded.kv, encoded.mask, counts, options.max_new_tokens - 1);
  torch::Tensor logits =
      encoded.last_logits.index_select(0, torch::tensor(row_prompts).to(device));  // (B, V)
  for (std::int64_t step = 0;; ++step) {
    const auto rows = static_cast<std::int64_t>(active.size());
    torch::Tensor chosen;
    {
      RECORD_USER_SCOPE("select");
      std::vector<double> uniforms(rows);
      for (std::int64_t i = 0; i < rows; ++i) uniforms[i] = uniform_at(row_seeds[active[i]], step);
      chosen = select_tokens(logits, torch::tensor(uniforms, torch::kDouble).to(device),
                             options.sampler);  // (rows)
      chosen = chosen.to(torch::kCPU, torch::kInt64).contiguous();
    }
    const std::int64_t* tokens = chosen.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < rows; ++i) {
      const std::int64_t b = active[i];
      if (finished[b]) continue;
      const int token = static_cast<int>(tokens[i]);
      if (stats) ++stats->generated_tokens;
      if (is_stop(token)) {
        answers[b].stopped = true;
        finished[b] = true;
        --unfinished;
      } else {
        answers[b].ids.push_back(token);
      }
    }
    if (unfinished == 0 || step + 1 >= options.max_new_tokens) break;

    std::vector<std::int64_t> next_tokens(chosen.data_ptr<std::int64_t>(),
                                          chosen.data_ptr<std::int64_t>() + rows);
    torch::Tensor hidden;  // (rows, 1, C)
    {
      RECORD_USER_SCOPE("decode");
      if (unfinished * 2 <= rows) {  // drop finished rows: one gather of the row buffers
        std::vector<std::int64_t> keep, kept_answers, kept_tokens;
        for (std::int64_t i = 0; i < rows; ++i) {
          if (finished[active[i]]) continue;
          keep.push_back(i);
          kept_answers.push_back(active[i]);
          kept_tokens.push_back(next_tokens[i]);
        }
        cache.keep_rows(keep);
        active = std::move(kept_answers);
        next_tokens = std::move(kept_tokens);
      }
      const auto now = static_cast<std::int64_t>(active.size());
      std::vector<std::int64_t> positions(now);
      for (std::int64_t i = 0; i < now; ++i) {
        const std::int64_t r = row_prompts[active[i]];
        positions[i] = encoded.lengths[r] + encoded.offsets[r] + step;  // token `step`'s position
      }
      torch::Tensor token_ids = torch::tensor(next_tokens).to(device).unsqueeze(1);  // (rows, 1)
      torch::Tensor embeds = model.embed_text(token_ids);                            // (rows, 1, C)
      hidden = model.run_text_with(
          embeds, torch::tensor(positions).to(device).unsqueeze(1),
          [&cache](std::size_t layer, const torch::Tensor& q, const torch::Tensor& k,
                   const torch::Tensor& v, double scale) {
            return cache.attend_step(layer, q, k, v, scale);
          });  // (rows, 1, C)
      cache.advance();
      if (stats) ++stats->steps;
    }
    RECORD_USER_SCOPE("lm_head");
    logits = model.lm_logits(hidden.squeeze(1));  // (rows, V)
  }
  return answers;
}

std::vector<std::vector<GeneratedAnswer>> generate(VisionLanguageModel& model,
                                                   const std::vector<GenerationPrompt>& prompts,
                                                   const GenerationOptions& options,
                                                   GenerationStats* stats) {
  EncodedPrompts encoded = encode_prompts(model, prompts, options);
  std::vector<std::int64_t> row_prompts;
  std::vector<std::uint64_t> row_seeds;
  for (std::size_t r = 0; r < prompts.size(); ++r) {
    for (std::uint64_t seed : prompts[r].seeds) {
      row_prompts.push_back(static_cast<std::int64_t>(r));
      row_seeds.push_back(seed);
    }
  }
  if (stats) {
    for (std::int64_t length : encoded.lengths) stats->prompt_tokens += length;
  }
  std::vector<GeneratedAnswer> rows =
      decode_rows(model, encoded, row_prompts, row_seeds, options, stats);
  std::vector<std::vector<GeneratedAnswer>> answers(prompts.size());
  for (std::size_t b = 0; b < rows.size(); ++b) {
    answers[row_prompts[b]].push_back(std::move(rows[b]));
  }
  return answers;
}

}  // namespace perpo
