// Reference log-probs: from the lists when they carry them, else computed once with the initial
// weights (a pre-pass before the first step) and cached in the run folder, so a resumed run reads
// them back instead of needing the initial weights. A frozen second model is held only for
// loss.reference: live.
//
//   perpo::ReferencePlan plan = perpo::prepare_reference(data, model, config, run_dir, resuming);
//   // plan.source: "lists", "cache", "computed", "live" or "none" (sft / reference_free)
#pragma once

#include <filesystem>
#include <string>

#include "perpo/config/config.h"
#include "perpo/model/load.h"
#include "perpo/train/train_data.h"

namespace perpo {

struct ReferencePlan {
  std::string source;        // lists | cache | computed | live | none
  std::size_t computed = 0;  // lists scored by the pre-pass
  std::filesystem::path cache;
};

/// Where the pre-pass caches its values: <run_dir>/reference_logps.json.
std::filesystem::path reference_cache_path(const std::filesystem::path& run_dir);

/// Fills every example's ref_logps as described above (unless the loss reads none, or live).
/// `model` must hold the initial weights unless `resuming`; a resumed run needs the cache (or
/// lists that carry ref_logps) and throws perpo::Error (input) without it. With
/// loss.reference=precompute the lists' own values are replaced too.
ReferencePlan prepare_reference(TrainData& data, LoadedModel& model, const Config& config,
                                const std::filesystem::path& run_dir, bool resuming);

/// Scores every example's answers with `model` in eval mode without gradients: (N) per example.
/// Used by the pre-pass and by the live reference.
std::vector<double> reference_logps(LlavaModelImpl& model, const TrainExample& example,
                                    const Config& config);

/// True when the model has LoRA adapters and they are all that trains (every other parameter has
/// requires_grad false). The model with its adapters switched off then computes exactly what the
/// initial weights did (B starts at zero; nothing else moves), without a second model.
bool adapters_are_all_that_trains(torch::nn::Module& model);

/// reference_logps of the frozen start: `model` with every LoRA adapter switched off (scale 0)
/// for the call, then on again. Requires adapters_are_all_that_trains(model).
std::vector<double> frozen_start_logps(LlavaModelImpl& model, const TrainExample& example,
                                       const Config& config);

}  // namespace perpo
