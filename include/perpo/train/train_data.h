// What a run trains on, encoded once: every preference list (or, for loss.name sft, every dataset
// record as a "list" of one answer, its ground truth) as token ids, and the tensors of one list
// on the training device.
//
// Shapes: P = prefix (prompt) tokens, N = answers of a list, R = rows scored (N, plus one for the
// ground truth when loss.nll_weight > 0), A = longest answer, H = W = image side.
//
//   perpo::TrainData data = perpo::load_train_data(config, model);   // reads data.train
//   perpo::ListTensors t = perpo::list_tensors(data.examples[i], config, device, pad_id);
//   perpo::ListLogps logps = perpo::score_list(*model.model, t);       // prefix once, R answers
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/data/examples.h"
#include "perpo/data/records.h"
#include "perpo/model/load.h"
#include "perpo/model/vlm.h"

namespace perpo {

struct TrainExample {
  ListExample list;             // prompt ids, N answers (1 for sft), rewards, ref_logps
  std::vector<int> target_ids;  // ground-truth answer ids (loss.nll_weight > 0), else empty
  DatasetRecord record;         // the image (and source, for messages)
};

struct TrainData {
  std::vector<TrainExample> examples;
  std::size_t truncated_answers = 0;  // answers cut to data.max_answer_tokens
  std::size_t skipped_records = 0;    // bad records left out (data.on_bad_record: skip)
  std::map<std::size_t, std::size_t> lists_by_size;  // N -> lists with N answers

  /// "120 lists (N=20: 118, N=19: 2); 3 answers truncated to 32 tokens; 0 records skipped".
  std::string summary(const Config& config) const;
  /// A hash (16 hex digits) of what training reads from the data: every example's prompt,
  /// answers, rewards, reference log-probs, target and image path. Kept in checkpoints, so a
  /// --resume on data that changed at the same path is refused.
  std::string fingerprint() const;
};

/// True for loss.name sft (dataset records in, one answer per example).
bool is_sft(const Config& config);

/// Reads data.train (dataset records for sft, preference lists in either format otherwise) and
/// encodes it with the model's tokenizer and chat template. Throws perpo::Error (input) naming the
/// file for an empty or unreadable file; answer-count rules: see encode_lists.
TrainData load_train_data(const Config& config, const LoadedModel& model);

/// Encodes preference lists (also the online mode's re-sampled ones). Lists whose N differs from
/// the others are trained as they are (each list's loss is computed on its own) and counted in
/// lists_by_size; dpo needs only N >= 2.
TrainData encode_lists(const std::vector<PreferenceList>& lists, const Config& config,
                       const LoadedModel& model);

struct ListTensors {
  at::Tensor prefix_ids;    // (1, P) int64
  at::Tensor pixel_values;  // the family's batch form (LLaVA (1, 3, H, W)) in the model's dtype,
                            // or undefined without an image
  at::Tensor grid_thw;      // Qwen2.5-VL's (1, 3) image_grid_thw; LLaVA: undefined
  at::Tensor answer_ids;    // (R, A) int64
  at::Tensor answer_mask;   // (R, A) int64
  at::Tensor rewards;       // (N) float32 (undefined for sft)
  at::Tensor ref_logps;     // (N) float32 or undefined
  at::Tensor sample_token_logps;  // (N, A) float32 (0 on padding), or undefined
  std::int64_t answers = 0;       // N
  bool has_target = false;        // row N is the ground truth (nll term)
  std::int64_t tokens = 0;        // P + all answer tokens: what one forward processes
};

/// The example's tensors on `device`; the image decoded now and prepared by `model`'s family.
/// `pad_id` < 0 pads with 0.
ListTensors list_tensors(const TrainExample& example, const Config& config,
                         const VisionLanguageModel& model, const c10::Device& device,
                         c10::ScalarType pixel_dtype, int pad_id);

struct ListLogps {
  at::Tensor answers;      // (N) summed answer log-probs (fp32), with autograd when enabled
  at::Tensor token_logps;  // (N, A) the same token by token (fp32; 0 on padding)
  at::Tensor token_mask;   // (N, A) 1 on answer tokens, float32
  at::Tensor tokens;       // (N) answer lengths, float32
  at::Tensor target_nll;   // () token-mean NLL of the ground truth, or undefined
};

/// The prefix (image + prompt) runs once; the R answers run on its keys/values.
ListLogps score_list(VisionLanguageModel& model, const ListTensors& tensors);

}  // namespace perpo
