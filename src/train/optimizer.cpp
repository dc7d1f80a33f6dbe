// AdamW with parameter groups and fp32 master weights (see optimizer.h).
#include "perpo/train/optimizer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "perpo/core/error.h"
#include "perpo/core/strings.h"

namespace perpo {

std::string parameter_group_of(const std::string& name) {
  // Qwen2.5-VL: the patch merger (visual.merger.*) is its projector.
  if (starts_with(name, "multi_modal_projector.") || starts_with(name, "visual.merger.")) {
    return "projector";
  }
  if (starts_with(name, "vision_tower.") || starts_with(name, "visual.")) return "vision";
  return "decoder";
}

namespace {

double group_lr(const std::string& group, const OptimConfig& c) {
  if (group == "vision" && c.vision_lr > 0) return c.vision_lr;
  if (group == "projector" && c.projector_lr > 0) return c.projector_lr;
  return c.lr;
}

double group_weight_decay(const std::string& group, const OptimConfig& c) {
  if (group == "vision" && c.vision_weight_decay >= 0) return c.vision_weight_decay;
  if (group == "projector" && c.projector_weight_decay >= 0) return c.projector_weight_decay;
  return c.weight_decay;
}

}  // namespace

AdamW::AdamW(const torch::OrderedDict<std::string, at::Tensor>& named_params,
             const OptimConfig& config, Kernel kernel)
    : config_(config) {
  torch::NoGradGuard no_grad;
  for (const std::string group : {"vision", "projector", "decoder"}) {
    ParamGroup g;
    g.name = group;
    g.lr = group_lr(group, config);
    g.weight_decay = group_weight_decay(group, config);
    for (const auto& item : named_params) {
      const at::Tensor& p = item.value();
      if (!p.requires_grad() || parameter_group_of(item.key()) != group) continue;
      g.names.push_back(item.key());
      g.params.push_back(p);
      at::Tensor master;
      if (p.scalar_type() != torch::kFloat32) master = p.detach().to(torch::kFloat32).clone();
      g.master.push_back(master);
      g.exp_avg.push_back(torch::zeros_like(p, p.options().dtype(torch::kFloat32)));
      g.exp_avg_sq.push_back(torch::zeros_like(p, p.options().dtype(torch::kFloat32)));
      g.owner.push_back(0);
    }
    if (!g.params.empty()) groups_.push_back(std::move(g));
  }
  if (groups_.empty()) {
    throw input_error("nothing to train: every parameter is frozen")
        .hint("set model.lora.enabled=true, or model.freeze_llm=false / freeze_projector=false");
  }
  set_lr_multiplier(1.0);
  // float32, as the fused kernels read it (exact up to 2^24 steps).
  const at::Tensor& first = groups_.front().params.front();
  step_count_ = torch::zeros({}, first.options().dtype(torch::kFloat32));
  fused_ = kernel == Kernel::kFused || (kernel == Kernel::kAuto && first.is_cuda());
}

void AdamW::shard(const ProcessGroup& group, bool reduce_scatter) {
  if (group.world() == 1) return;
  group_ = &group;
  std::int64_t total = 0;
  for (const ParamGroup& g : groups_) {
    for (const at::Tensor& p : g.params) total += p.numel();
  }
  // Contiguous runs balanced by size: a parameter goes to the rank whose 1/world slice of the
  // whole holds its middle element. The same on every rank (shapes only).
  const int world = group.world();
  std::int64_t before = 0;
  for (ParamGroup& g : groups_) {
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      const std::int64_t n = g.params[i].numel();
      const double middle = static_cast<double>(before) + 0.5 * static_cast<double>(n);
      g.owner[i] =
          std::min(world - 1, static_cast<int>(world * middle / static_cast<double>(total)));
      before += n;
      if (g.owner[i] != group.rank()) {  // another rank's: no moments, no master here
        g.exp_avg[i] = at::Tensor();
        g.exp_avg_sq[i] = at::Tensor();
        g.master[i] = at::Tensor();
      }
    }
  }
  scatter_ = reduce_scatter && group.supports_reduce_scatter();  // a collective: every rank asks
  if (!scatter_) return;
  std::map<at::ScalarType, std::vector<std::int64_t>> used;  // per dtype: elements of each rank
  for (std::size_t gi = 0; gi < groups_.size(); ++gi) {
    const ParamGroup& g = groups_[gi];
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      const at::ScalarType dtype = g.params[i].scalar_type();
      auto it = std::find_if(shards_.begin(), shards_.end(),
                             [&](const Shards& s) { return s.dtype == dtype; });
      if (it == shards_.end()) {
        shards_.push_back({dtype, 0, {}});
        it = shards_.end() - 1;
      }
      std::vector<std::int64_t>& counts = used[dtype];
      counts.resize(static_cast<std::size_t>(world), 0);
      std::int64_t& count = counts[static_cast<std::size_t>(g.owner[i])];
      it->slots.push_back({gi, i, g.owner[i], count});
      count += g.params[i].numel();
      it->size = std::max(it->size, count);
    }
  }
}

void AdamW::reduce_gradients() {
  PERPO_CHECK(scatter_, "AdamW::reduce_gradients: not sharded with reduce-scatter");
  torch::NoGradGuard no_grad;
  const int world = group_->world(), rank = group_->rank();
  for (const Shards& s : shards_) {
    const at::Tensor& first = groups_[s.slots.front().group].params[s.slots.front().index];
    at::Tensor input = torch::zeros({world * s.size}, first.options());  // (W * size)
    for (const Slot& slot : s.slots) {
      const at::Tensor& grad = groups_[slot.group].params[slot.index].grad();
      if (!grad.defined()) continue;  // zeros
      input.narrow(0, slot.owner * s.size + slot.offset, grad.numel()).copy_(grad.reshape({-1}));
    }
    at::Tensor output = torch::empty({s.size}, first.options());  // (size): this rank's sums
    group_->reduce_scatter_sum(output, input);
    for (const Slot& slot : s.slots) {
      at::Tensor& p = groups_[slot.group].params[slot.index];
      at::Tensor& grad = p.mutable_grad();
      if (slot.owner != rank) {
        grad = at::Tensor();  // never read here: its owner updates the parameter
        continue;
      }
      if (!grad.defined()) grad = torch::empty_like(p);
      grad.copy_(output.narrow(0, slot.offset, p.numel()).view_as(p));
    }
  }
}

void AdamW::all_gather_updated() {
  const int world = group_->world(), rank = group_->rank();
  for (const Shards& s : shards_) {
    const at::Tensor& first = groups_[s.slots.front().group].params[s.slots.front().index];
    at::Tensor mine = torch::zeros({s.size}, first.options());  // (size)
    for (const Slot& slot : s.slots) {
      const at::Tensor& p = groups_[slot.group].params[slot.index];
      if (slot.owner == rank) mine.narrow(0, slot.offset, p.numel()).copy_(p.reshape({-1}));
    }
    at::Tensor all = torch::empty({world * s.size}, first.options());  // (W * size)
    group_->all_gather_into(all, mine);
    for (const Slot& slot : s.slots) {
      at::Tensor p = groups_[slot.group].params[slot.index].detach();
      if (slot.owner == rank) continue;
      p.copy_(all.narrow(0, slot.owner * s.size + slot.offset, p.numel()).view_as(p));
    }
  }
}

bool AdamW::owned(const ParamGroup& g, std::size_t i) const {
  return group_ == nullptr || g.owner[i] == group_->rank();
}

std::int64_t AdamW::state_numel() const {
  std::int64_t n = 0;
  for (const ParamGroup& g : groups_) {
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      for (const at::Tensor* t : {&g.exp_avg[i], &g.exp_avg_sq[i], &g.master[i]}) {
        if (t->defined()) n += t->numel();
      }
    }
  }
  return n;
}

void AdamW::broadcast_updated() {
  if (group_ == nullptr) return;
  if (scatter_) {
    all_gather_updated();
    return;
  }
  for (int owner = 0; owner < group_->world(); ++owner) {
    std::map<at::ScalarType, std::vector<at::Tensor>> by_dtype;  // of this owner's parameters
    for (const ParamGroup& g : groups_) {
      for (std::size_t i = 0; i < g.params.size(); ++i) {
        if (g.owner[i] == owner) by_dtype[g.params[i].scalar_type()].push_back(g.params[i]);
      }
    }
    for (auto& [dtype, params] : by_dtype) {
      std::vector<at::Tensor> flat;
      for (const at::Tensor& p : params) flat.push_back(p.detach().reshape({-1}));
      at::Tensor buffer = torch::cat(flat);
      group_->broadcast(buffer, owner);
      if (owner == group_->rank()) continue;
      std::int64_t offset = 0;
      for (at::Tensor& p : params) {
        p.detach().copy_(buffer.narrow(0, offset, p.numel()).view_as(p));
        offset += p.numel();
      }
    }
  }
}

void AdamW::set_lr_multiplier(double multiplier) {
  current_lr_.clear();
  for (const ParamGroup& g : groups_) current_lr_.push_back(g.lr * multiplier);
}

double AdamW::current_lr(const std::string& group) const {
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    if (groups_[i].name == group) return current_lr_[i];
  }
  return current_lr_.front();
}

void AdamW::step() { step(at::Tensor()); }

void AdamW::step(const at::Tensor& found_inf) {
  torch::NoGradGuard no_grad;
  if (fused_) {
    fused_step(found_inf);
    return;
  }
  // Tensor by tensor (CPU): a skipped step is known at once (reading a CPU tensor is no
  // synchronisation), and the arithmetic is the one the demo's tables were measured with.
  if (found_inf.defined() && found_inf.item<double>() != 0) return;
  step_count_.add_(1);
  const auto t = static_cast<double>(step_count_.item<float>());
  const double b1 = config_.beta1, b2 = config_.beta2;
  const double bias1 = 1.0 - std::pow(b1, t);
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(b2, t));
  for (std::size_t gi = 0; gi < groups_.size(); ++gi) {
    ParamGroup& g = groups_[gi];
    const double lr = current_lr_[gi];
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      at::Tensor& p = g.params[i];
      if (!p.grad().defined() || !owned(g, i)) continue;
      at::Tensor grad = p.grad().to(torch::kFloat32);
      at::Tensor target = g.master[i].defined() ? g.master[i] : p;  // fp32 weights to update
      if (g.weight_decay != 0) target.mul_(1.0 - lr * g.weight_decay);
      g.exp_avg[i].mul_(b1).add_(grad, 1.0 - b1);
      g.exp_avg_sq[i].mul_(b2).addcmul_(grad, grad, 1.0 - b2);
      at::Tensor denom = (g.exp_avg_sq[i].sqrt() / bias2_sqrt).add_(config_.eps);
      target.addcdiv_(g.exp_avg[i], denom, -lr / bias1);
      if (g.master[i].defined()) p.copy_(g.master[i]);  // rounded into the stored dtype
    }
  }
  broadcast_updated();
}

void AdamW::fused_step(const at::Tensor& found_inf) {
  // LibTorch's fused AdamW (one kernel over each group's tensors on CUDA): the update of
  // optimizer.h, with the bias corrections from the step count, which lives on the device. It
  // counts the update first and takes it back when `found_inf` says the update was skipped, as
  // torch.optim does; the kernel itself leaves everything as it was then.
  std::optional<at::Tensor> skip;
  if (found_inf.defined()) skip = found_inf.to(step_count_.device(), torch::kFloat32).reshape({});
  step_count_.add_(1);
  std::vector<at::Tensor> stored, masters;  // parameters with an fp32 master, and the masters
  for (std::size_t gi = 0; gi < groups_.size(); ++gi) {
    ParamGroup& g = groups_[gi];
    std::vector<at::Tensor> targets, grads, exp_avg, exp_avg_sq, steps;
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      const at::Tensor& p = g.params[i];
      if (!p.grad().defined() || !owned(g, i)) continue;
      targets.push_back(g.master[i].defined() ? g.master[i] : p);  // the fp32 weights to update
      grads.push_back(p.grad().to(torch::kFloat32).contiguous());
      exp_avg.push_back(g.exp_avg[i]);
      exp_avg_sq.push_back(g.exp_avg_sq[i]);
      steps.push_back(step_count_);
      if (g.master[i].defined()) {
        stored.push_back(p);
        masters.push_back(g.master[i]);
      }
    }
    if (targets.empty()) continue;
    at::_fused_adamw_(targets, grads, exp_avg, exp_avg_sq, /*max_exp_avg_sqs=*/{}, steps,
                      current_lr_[gi], config_.beta1, config_.beta2, g.weight_decay, config_.eps,
                      /*amsgrad=*/false, /*maximize=*/false, /*grad_scale=*/std::nullopt, skip);
  }
  if (!stored.empty()) at::_foreach_copy_(stored, masters);  // rounded into the stored dtype
  if (skip) step_count_.sub_(*skip);
  broadcast_updated();  // a skipped update broadcasts the unchanged weights
}

std::int64_t AdamW::steps() const { return static_cast<std::int64_t>(step_count_.item<float>()); }

void AdamW::zero_grad() {
  for (ParamGroup& g : groups_) {
    for (at::Tensor& p : g.params) {
      if (p.grad().defined()) p.mutable_grad() = at::Tensor();
    }
  }
}

std::vector<at::Tensor> AdamW::params() const {
  std::vector<at::Tensor> all;
  for (const ParamGroup& g : groups_) all.insert(all.end(), g.params.begin(), g.params.end());
  return all;
}

NamedTensors AdamW::state() const {
  torch::NoGradGuard no_grad;
  NamedTensors out;
  const bool keep = group_ == nullptr || group_->writer();
  // One tensor of the state: this rank's own, or (sharded) its owner's, broadcast to all.
  auto add = [&](const std::string& name, const at::Tensor& own, const at::Tensor& p, int owner) {
    if (group_ == nullptr) {
      out.emplace_back(name, own);
      return;
    }
    at::Tensor t =
        owner == group_->rank() ? own : torch::empty(p.sizes(), p.options().dtype(torch::kFloat32));
    group_->broadcast(t, owner);
    if (keep) out.emplace_back(name, t.to(torch::kCPU));
  };
  for (const ParamGroup& g : groups_) {
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      const std::string prefix = "optim." + g.names[i];
      const at::Tensor& p = g.params[i];
      add(prefix + ".exp_avg", g.exp_avg[i], p, g.owner[i]);
      add(prefix + ".exp_avg_sq", g.exp_avg_sq[i], p, g.owner[i]);
      if (p.scalar_type() != torch::kFloat32) add(prefix + ".master", g.master[i], p, g.owner[i]);
    }
  }
  if (!keep) return {};
  out.emplace_back("optim.__steps__", torch::tensor({steps()}, torch::kInt64));
  return out;
}

void AdamW::load_state(const NamedTensors& state) {
  torch::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> by_name(state.begin(), state.end());
  // Every tensor is checked; a sharded rank copies its own parameters' alone.
  auto take = [&](const std::string& name, at::Tensor& into, at::IntArrayRef shape, bool copy) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      throw input_error("optimizer state has no tensor '", name, "'")
          .hint("the checkpoint was written for other trainable parameters (LoRA / freezing)");
    }
    if (it->second.sizes() != shape) {
      throw input_error("optimizer state tensor '", name, "' has shape ", it->second.sizes(),
                        " but the parameter needs ", shape);
    }
    if (copy) into.copy_(it->second);
  };
  for (ParamGroup& g : groups_) {
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      const std::string prefix = "optim." + g.names[i];
      const at::IntArrayRef shape = g.params[i].sizes();
      const bool mine = owned(g, i);
      take(prefix + ".exp_avg", g.exp_avg[i], shape, mine);
      take(prefix + ".exp_avg_sq", g.exp_avg_sq[i], shape, mine);
      if (g.params[i].scalar_type() != torch::kFloat32) {
        take(prefix + ".master", g.master[i], shape, mine);
      }
    }
  }
  at::Tensor steps = torch::zeros({1}, torch::kInt64);
  take("optim.__steps__", steps, steps.sizes(), true);
  step_count_.fill_(static_cast<double>(steps.item<std::int64_t>()));
}

namespace {

std::vector<at::Tensor> defined_grads(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  return grads;
}

// The gradients grouped by dtype, for multi-tensor operations (one per dtype).
std::map<at::ScalarType, std::vector<at::Tensor>> by_dtype(const std::vector<at::Tensor>& grads) {
  std::map<at::ScalarType, std::vector<at::Tensor>> groups;
  for (const at::Tensor& g : grads) groups[g.scalar_type()].push_back(g);
  return groups;
}

at::Tensor global_norm(const std::vector<at::Tensor>& grads) {
  std::vector<at::Tensor> norms;  // one 0-dim float64 norm per gradient, then their norm
  if (grads.front().is_cuda()) {  // one multi-tensor kernel per dtype
    for (const auto& [dtype, group] : by_dtype(grads)) {
      for (const at::Tensor& n : at::_foreach_norm(group, 2, torch::kFloat64)) norms.push_back(n);
    }
  } else {  // on CPU the multi-tensor form runs tensor by tensor anyway
    for (const at::Tensor& g : grads) norms.push_back(g.to(torch::kFloat64).norm());
  }
  return torch::stack(norms).norm();  // () float64
}

}  // namespace

double grad_norm(const std::vector<at::Tensor>& params) {
  torch::NoGradGuard no_grad;
  const std::vector<at::Tensor> grads = defined_grads(params);
  return grads.empty() ? 0.0 : global_norm(grads).item<double>();
}

namespace {

// Scales `grads` so that their norm, `norm`, becomes at most `max_norm` (0: no clipping).
void clip_to(const std::vector<at::Tensor>& grads, const at::Tensor& norm, double max_norm) {
  if (max_norm <= 0 || grads.empty()) return;
  // coef = min(1, max_norm / (norm + 1e-6)); 1 (no change) when the norm is not finite. A
  // gradient times exactly 1 is itself.
  const at::Tensor coef = torch::where(
      torch::isfinite(norm), (max_norm / (norm + 1e-6)).clamp_max(1.0), torch::ones_like(norm));
  for (auto& [dtype, group] : by_dtype(grads)) at::_foreach_mul_(group, coef.to(dtype));
}

}  // namespace

at::Tensor clip_grad_norm_tensor(const std::vector<at::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  const std::vector<at::Tensor> grads = defined_grads(params);
  if (grads.empty()) return torch::zeros({}, torch::kFloat64);
  const at::Tensor norm = global_norm(grads);
  clip_to(grads, norm, max_norm);
  return norm;
}

at::Tensor AdamW::clip_gradients(double max_norm) {
  if (!scatter_) return clip_grad_norm_tensor(params(), max_norm);
  torch::NoGradGuard no_grad;
  // This rank's own gradients (the others' were released): the squared norm of each, summed
  // here, then over ranks.
  const std::vector<at::Tensor> grads = defined_grads(params());
  const at::Tensor& first = groups_.front().params.front();
  at::Tensor squares = torch::zeros({1}, first.options().dtype(torch::kFloat64));  // (1)
  if (!grads.empty()) squares += global_norm(grads).square();
  group_->all_reduce_sum(squares);
  const at::Tensor norm = squares.sqrt().reshape({});  // () float64
  clip_to(grads, norm, max_norm);
  return norm;
}

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  return clip_grad_norm_tensor(params, max_norm).item<double>();
}

}  // namespace perpo
