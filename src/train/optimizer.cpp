// AdamW with parameter groups and fp32 master weights (see optimizer.h).
#include "perpo/train/optimizer.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <optional>

#include "perpo/core/error.h"
#include "perpo/core/strings.h"

namespace perpo {

std::string parameter_group_of(const std::string& name) {
  if (starts_with(name, "vision_tower.")) return "vision";
  if (starts_with(name, "multi_modal_projector.")) return "projector";
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
      if (!p.grad().defined()) continue;
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
      if (!p.grad().defined()) continue;
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
  NamedTensors out;
  for (const ParamGroup& g : groups_) {
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      const std::string prefix = "optim." + g.names[i];
      out.emplace_back(prefix + ".exp_avg", g.exp_avg[i]);
      out.emplace_back(prefix + ".exp_avg_sq", g.exp_avg_sq[i]);
      if (g.master[i].defined()) out.emplace_back(prefix + ".master", g.master[i]);
    }
  }
  out.emplace_back("optim.__steps__", torch::tensor({steps()}, torch::kInt64));
  return out;
}

void AdamW::load_state(const NamedTensors& state) {
  torch::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> by_name(state.begin(), state.end());
  auto take = [&](const std::string& name, at::Tensor& into) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      throw input_error("optimizer state has no tensor '", name, "'")
          .hint("the checkpoint was written for other trainable parameters (LoRA / freezing)");
    }
    if (it->second.sizes() != into.sizes()) {
      throw input_error("optimizer state tensor '", name, "' has shape ", it->second.sizes(),
                        " but the parameter needs ", into.sizes());
    }
    into.copy_(it->second);
  };
  for (ParamGroup& g : groups_) {
    for (std::size_t i = 0; i < g.params.size(); ++i) {
      const std::string prefix = "optim." + g.names[i];
      take(prefix + ".exp_avg", g.exp_avg[i]);
      take(prefix + ".exp_avg_sq", g.exp_avg_sq[i]);
      if (g.master[i].defined()) take(prefix + ".master", g.master[i]);
    }
  }
  at::Tensor steps = torch::zeros({1}, torch::kInt64);
  take("optim.__steps__", steps);
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

at::Tensor clip_grad_norm_tensor(const std::vector<at::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  const std::vector<at::Tensor> grads = defined_grads(params);
  if (grads.empty()) return torch::zeros({}, torch::kFloat64);
  const at::Tensor norm = global_norm(grads);
  if (max_norm > 0) {
    // coef = min(1, max_norm / (norm + 1e-6)); 1 (no change) when the norm is not finite. A
    // gradient times exactly 1 is itself.
    const at::Tensor coef = torch::where(
        torch::isfinite(norm), (max_norm / (norm + 1e-6)).clamp_max(1.0), torch::ones_like(norm));
    for (auto& [dtype, group] : by_dtype(grads)) at::_foreach_mul_(group, coef.to(dtype));
  }
  return norm;
}

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  return clip_grad_norm_tensor(params, max_norm).item<double>();
}

}  // namespace perpo
