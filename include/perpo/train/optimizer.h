// AdamW over parameter groups (vision tower, projector, decoder/LoRA), with fp32 master weights
// for parameters stored in a lower precision, global-norm gradient clipping, and its whole state
// as named tensors for checkpoints.
//
//   perpo::AdamW optim(model->named_parameters(), config.optim);   // trainable ones only
//   loss.backward();
//   double norm = perpo::clip_grad_norm(optim.params(), config.optim.max_grad_norm);
//   optim.set_lr_multiplier(perpo::lr_multiplier(step, total, config.optim));
//   optim.step();
//   optim.zero_grad();
//
// The update is PyTorch's AdamW (t = 1, 2, ...; g in fp32), fused on CUDA (Kernel below):
//   p <- p * (1 - lr * wd);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// Mixed precision (run.dtype bf16): a trained parameter stored in bf16 gets an fp32 master copy;
// the update runs on the master and is rounded into the parameter, so small updates accumulate
// instead of vanishing in bf16 rounding. Frozen parameters are not seen here at all.
//
// ZeRO-1 (shard(group), distributed.zero 1): each parameter is owned by one rank (contiguous runs
// of the parameter list, balanced by size); a rank keeps the moments and master of its own
// parameters only (about 1 / world of the state) and updates them. Where the backend has
// reduce-scatter (Gloo and NCCL in LibTorch 2.13: ProcessGroup::supports_reduce_scatter), the
// optimizer sums the gradients itself (reduce_gradients: one reduce-scatter per dtype, each rank
// receives the sums of its own parameters' gradients only and drops the others'), clips them on
// the norm over all ranks (clip_gradients), and all-gathers the updated parameters: 2 (W - 1) / W
// times the gradient bytes per rank and step, as plain data parallel. Otherwise every rank holds
// the summed gradients (the trainer's all-reduce) and each owner broadcasts its updated
// parameters (one flattened broadcast per owner and dtype): 3 (W - 1) / W.
// state() gathers the whole state on rank 0 (every rank must call it); load_state() keeps each
// rank's share of a whole state, so a checkpoint resumes on any world size.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/ordered_dict.h>

#include <cstdint>
#include <string>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/dist/process_group.h"
#include "perpo/model/safetensors.h"

namespace perpo {

/// The group of a canonical parameter name: "vision" (vision_tower.*, Qwen2.5-VL's visual.*),
/// "projector" (multi_modal_projector.*, visual.merger.*), or "decoder" (language_model.*,
/// lm_head.*). Adapters go with their layer's group.
std::string parameter_group_of(const std::string& name);

struct ParamGroup {
  std::string name;         // vision | projector | decoder
  double lr = 0;            // peak learning rate
  double weight_decay = 0;  // decoupled decay
  std::vector<std::string> names;
  std::vector<at::Tensor> params;
  std::vector<at::Tensor> master;      // fp32 copies (undefined when the parameter is fp32)
  std::vector<at::Tensor> exp_avg;     // fp32, like the master
  std::vector<at::Tensor> exp_avg_sq;  // fp32
  std::vector<int> owner;              // the rank that updates each parameter (ZeRO-1; else 0)
};

class AdamW {
 public:
  /// kAuto: LibTorch's fused multi-tensor kernel (at::_fused_adamw_) for parameters on CUDA,
  /// where it saves hundreds of kernel launches per step; tensor by tensor on CPU, where the
  /// fused kernel gains about 1.8x on the optimizer alone (bench_bench_optimizer), under 1% of a
  /// demo step, and changes the last bits that the demo's stage 1 is sensitive to
  /// (docs/demo-study.md). The two agree to 1e-6 over 100 steps (tests/train).
  enum class Kernel { kAuto, kFused, kPerTensor };

  /// Takes every parameter with requires_grad; throws perpo::Error (input) when there is none.
  AdamW(const torch::OrderedDict<std::string, at::Tensor>& named_params, const OptimConfig& config,
        Kernel kernel = Kernel::kAuto);

  /// ZeRO-1: from now on this rank keeps and updates only its share of the parameters (see
  /// above), with reduce-scatter where `reduce_scatter` and the backend has it (a collective:
  /// every rank calls shard alike); `group` must outlive the optimizer. Call before load_state.
  void shard(const ProcessGroup& group, bool reduce_scatter = true);
  bool sharded() const { return group_ != nullptr; }
  /// Sharded on a backend with reduce-scatter: the gradients are summed over ranks by
  /// reduce_gradients() (not by an all-reduce of them all).
  bool reduces_gradients() const { return scatter_; }
  /// reduces_gradients(): after the backward, sums the gradients over ranks with one
  /// reduce-scatter per dtype. This rank's own parameters get the sums (zeros summed in for a
  /// gradient that is missing on a rank); the other parameters' gradients are released.
  void reduce_gradients();
  /// Global-norm clipping of the gradients step() uses: clip_grad_norm_tensor(params(),
  /// max_norm), or with reduces_gradients() the norm over every rank's own gradients (one
  /// all-reduce of their squared sums), the same on every rank. Returns the norm before clipping.
  at::Tensor clip_gradients(double max_norm);
  /// Elements of optimizer state (moments and masters) this rank holds.
  std::int64_t state_numel() const;

  /// Sets each group's current lr to its peak lr times `multiplier`.
  void set_lr_multiplier(double multiplier);
  /// One AdamW update of every parameter that has a gradient.
  void step();
  /// The same, skipped when `found_inf` (a one-element tensor, 1 or 0) is 1: no weight, moment
  /// or step count changes. The fused kernel skips on the device, with no host synchronisation.
  void step(const at::Tensor& found_inf);
  bool fused() const { return fused_; }
  void zero_grad();

  /// Every trained parameter, group by group.
  std::vector<at::Tensor> params() const;
  const std::vector<ParamGroup>& groups() const { return groups_; }
  /// Current lr of a group ("decoder" if present, else the first) for logging.
  double current_lr(const std::string& group = "decoder") const;
  /// Updates applied so far (skipped ones not counted); reads the device's count to the host.
  std::int64_t steps() const;

  /// "optim.<param>.exp_avg", ".exp_avg_sq", ".master" tensors, and the step count in
  /// "optim.__steps__" (int64, shape (1)). Sharded: a collective; rank 0 gets the whole state (on
  /// the CPU), the others an empty list.
  NamedTensors state() const;
  /// Restores state(); throws perpo::Error naming the first missing or mis-shaped tensor.
  void load_state(const NamedTensors& state);

 private:
  std::vector<ParamGroup> groups_;
  std::vector<double> current_lr_;
  OptimConfig config_;
  void fused_step(const at::Tensor& found_inf);
  bool owned(const ParamGroup& g, std::size_t i) const;
  void broadcast_updated();  // ZeRO-1: every owner's parameters to the other ranks
  const ProcessGroup* group_ = nullptr;

  // ZeRO-1 with reduce-scatter: per dtype, the parameters laid out rank by rank in one buffer of
  // world * size elements (rank r's own parameters from r * size on, zeros after them).
  struct Slot {
    std::size_t group = 0, index = 0;  // groups_[group].params[index]
    int owner = 0;
    std::int64_t offset = 0;  // in its owner's part
  };
  struct Shards {
    at::ScalarType dtype;
    std::int64_t size = 0;  // elements per rank: the largest rank's own parameters
    std::vector<Slot> slots;
  };
  std::vector<Shards> shards_;
  bool scatter_ = false;
  void all_gather_updated();  // reduce-scatter's counterpart of broadcast_updated

  at::Tensor step_count_;  // () float32 on the parameters' device: updates applied
  bool fused_ = false;
};

/// Global L2 norm of the gradients of `params` (those that have one), in fp64 on the host.
double grad_norm(const std::vector<at::Tensor>& params);

/// Scales the gradients so their global norm is at most `max_norm` (0 = no clipping) and returns
/// the norm before clipping. A non-finite norm leaves the gradients as they are.
double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

/// clip_grad_norm without a host synchronisation: the norm stays a 0-dim float64 tensor on the
/// gradients' device (0 without gradients), and the scaling is computed there.
at::Tensor clip_grad_norm_tensor(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace perpo
