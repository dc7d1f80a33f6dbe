// Reference log-probs, decided in one place: the trainer asks its ReferenceSource for the values
// of every step's list and for those of re-sampled lists (online mode).
//
// Offline lists: from the lists when they carry them, else computed once with the initial weights
// (a pre-pass before the first step) and cached in the run folder, so a resumed run reads them
// back instead of needing the initial weights. A frozen second model is held only for
// loss.reference: live, which scores every step's list with it.
//
// loss.name grpo with loss.grpo.kl_beta > 0 reads the reference token by token at every step
// (step_token_logps): from the frozen second model (loss.reference: live), or from the policy
// with its LoRA adapters off when they are all that trains (source "adapters-off").
//
// Re-sampled lists (online mode) get theirs when they are sampled, and keep them (checkpointed):
//   live          the frozen second model
//   sampler       the policy that sampled them (the online sampler stores them while decoding)
//   adapters-off  the policy with its LoRA adapters switched off, which is the frozen start when
//                 the adapters are all that trains (no second model)
//
//   perpo::ReferenceSource reference(data, model, config, run_dir, resuming);
//   reference.plan().source;    // "lists", "cache", "computed", "live" or "none"
//   at::Tensor ref = reference.step_logps(example, stored, device, from_resampled);
//   reference.fill_resampled(lists, policy);
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "perpo/config/config.h"
#include "perpo/model/load.h"
#include "perpo/train/train_data.h"

namespace perpo {

struct ReferencePlan {
  std::string source;        // lists | cache | computed | live | adapters-off | none
  std::size_t computed = 0;  // lists scored by the pre-pass
  std::filesystem::path cache;
};

/// Where the pre-pass caches its values: <run_dir>/reference_logps.json.
std::filesystem::path reference_cache_path(const std::filesystem::path& run_dir);

/// loss.grpo.kl_beta > 0: "live" or "adapters-off" (above), chosen from loss.reference; throws
/// perpo::Error (input) naming the key when neither applies.
std::string token_reference_source(const Config& config, VisionLanguageModel& policy);

/// Fills every example's ref_logps as described above (unless the loss reads none, or live).
/// `model` must hold the initial weights unless `resuming`; a resumed run needs the cache (or
/// lists that carry ref_logps) and throws perpo::Error (input) without it. With
/// loss.reference=precompute the lists' own values are replaced too.
ReferencePlan prepare_reference(TrainData& data, LoadedModel& model, const Config& config,
                                const std::filesystem::path& run_dir, bool resuming);

/// Scores every example's answers with `model` in eval mode without gradients: (N) per example.
/// Used by the pre-pass and by the live reference.
std::vector<double> reference_logps(VisionLanguageModel& model, const TrainExample& example,
                                    const Config& config);

/// True when the model has LoRA adapters and they are all that trains (every other parameter has
/// requires_grad false). The model with its adapters switched off then computes exactly what the
/// initial weights did (B starts at zero; nothing else moves), without a second model.
bool adapters_are_all_that_trains(torch::nn::Module& model);

/// reference_logps of the frozen start: `model` with every LoRA adapter switched off (scale 0)
/// for the call, then on again. Requires adapters_are_all_that_trains(model).
std::vector<double> frozen_start_logps(VisionLanguageModel& model, const TrainExample& example,
                                       const Config& config);

/// Token by token, of the N answers of a step's list tensors (already on the model's device and
/// dtype: the image is not decoded again): (N, A) float32, 0 on padding; the frozen start when
/// `adapters_off` (requires adapters_are_all_that_trains(model)).
at::Tensor reference_token_logps(VisionLanguageModel& model, const ListTensors& tensors,
                                 bool adapters_off = false);

class ReferenceSource {
 public:
  /// Throws perpo::Error (input) when online mode (train.online_resample_every > 0) cannot score
  /// re-sampled lists: loss.reference other than live or sampler without LoRA adapters as the
  /// only trained part. Called before the run writes anything.
  static void check_online(const Config& config, VisionLanguageModel& policy);

  /// prepare_reference for `data`, and the frozen second model for loss.reference: live (loaded
  /// from config.model: the initial weights).
  ReferenceSource(TrainData& data, LoadedModel& policy, const Config& config,
                  const std::filesystem::path& run_dir, bool resuming);

  const ReferencePlan& plan() const { return plan_; }
  bool needed() const { return plan_.source != "none"; }

  /// The reference log-probs (N) of a step's list as float32 on `device`: `stored` (the list's
  /// ref_logps as a tensor), or the live model's for a data.train list under loss.reference: live.
  /// `resampled`: the list came from fill_resampled, whose values are kept.
  at::Tensor step_logps(const TrainExample& example, const at::Tensor& stored,
                        const c10::Device& device, bool resampled);

  /// loss.grpo.kl_beta > 0: the reference's token log-probs (N, A) of a step's list tensors,
  /// from the live model or from `policy` with its adapters off.
  at::Tensor step_token_logps(const ListTensors& tensors, VisionLanguageModel& policy);

  /// Fills the ref_logps of freshly re-sampled lists as the table above says (live: every list's
  /// values replaced; sampler and adapters-off: those of lists that have none).
  void fill_resampled(std::vector<PreferenceList>& lists, LoadedModel& policy);

 private:
  const Config& config_;
  ReferencePlan plan_;
  std::optional<LoadedModel> live_;
};

}  // namespace perpo
