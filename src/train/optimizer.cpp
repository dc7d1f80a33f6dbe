// AdamW with parameter groups and fp32 master weights (see optimizer.h).
#include "perpo/train/optimizer.h"

#include <torch/torch.h>

#include <cmath>
#include <map>

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
             const OptimConfig& config)
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

void AdamW::step() {
  torch::NoGradGuard no_grad;
  ++steps_;
  const double b1 = config_.beta1, b2 = config_.beta2;
  const double bias1 = 1.0 - std::pow(b1, static_cast<double>(steps_));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(b2, static_cast<double>(steps_)));
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
  out.emplace_back("optim.__steps__", torch::tensor({steps_}, torch::kInt64));
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
  steps_ = steps.item<std::int64_t>();
}

namespace {

std::vector<at::Tensor> defined_grads(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  return grads;
}

at::Tensor global_norm(const std::vector<at::Tensor>& grads) {
  std::vector<at::Tensor> norms;  // one 0-dim tensor per gradient, then their norm
  for (const at::Tensor& g : grads) norms.push_back(g.to(torch::kFloat64).norm());
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
    std::map<at::ScalarType, std::vector<at::Tensor>> by_dtype;  // one multi-tensor op per dtype
    for (const at::Tensor& g : grads) by_dtype[g.scalar_type()].push_back(g);
    for (auto& [dtype, group] : by_dtype) at::_foreach_mul_(group, coef.to(dtype));
  }
  return norm;
}

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  return clip_grad_norm_tensor(params, max_norm).item<double>();
}

}  // namespace perpo
