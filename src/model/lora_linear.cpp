#include "perpo/model/lora_linear.h"

#include <torch/nn/functional/dropout.h>
#include <torch/nn/functional/linear.h>
#include <torch/nn/init.h>

#include <cmath>

#include "perpo/core/error.h"

namespace perpo {
namespace F = torch::nn::functional;

LoraLinearImpl::LoraLinearImpl(std::int64_t in, std::int64_t out, bool with_bias)
    : in_features(in), out_features(out) {
  // Same initialisation as torch::nn::Linear (weights are normally loaded from a checkpoint).
  weight = register_parameter("weight", torch::empty({out, in}));
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (with_bias) {
    double bound = 1.0 / std::sqrt(static_cast<double>(in));
    bias = register_parameter("bias", torch::empty({out}).uniform_(-bound, bound));
  }
}

torch::Tensor LoraLinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = F::linear(x, weight, bias);  // (..., out)
  if (lora_A.defined()) {
    torch::Tensor h =
        lora_dropout > 0
            ? F::dropout(x, F::DropoutFuncOptions().p(lora_dropout).training(is_training()))
            : x;
    y = y + F::linear(F::linear(h, lora_A), lora_B) * lora_scale;  // (..., r) -> (..., out)
  }
  return y;
}

void LoraLinearImpl::enable_lora(int r, double alpha, double dropout) {
  PERPO_CHECK(!lora_A.defined(), "LoRA is already enabled on this layer");
  PERPO_CHECK(r > 0, "LoRA rank must be > 0, got ", r);
  auto options = weight.options();
  lora_A = register_parameter("lora_A", torch::empty({r, in_features}, options));
  torch::nn::init::kaiming_uniform_(lora_A, std::sqrt(5.0));
  lora_B = register_parameter("lora_B", torch::zeros({out_features, r}, options));
  lora_scale = alpha / r;
  lora_dropout = dropout;
}

torch::Tensor LoraLinearImpl::merged_weight() const {
  torch::NoGradGuard no_grad;
  if (!lora_A.defined()) return weight.detach().clone();
  return weight.detach() + torch::matmul(lora_B.detach(), lora_A.detach()) * lora_scale;
}

void LoraLinearImpl::merge() {
  if (!lora_A.defined()) return;
  torch::Tensor merged = merged_weight();
  {
    torch::NoGradGuard no_grad;
    weight.copy_(merged);
  }
  // unregister the adapter parameters
  auto& params = parameters_;
  params.erase("lora_A");
  params.erase("lora_B");
  lora_A = torch::Tensor();
  lora_B = torch::Tensor();
}

}  // namespace perpo
