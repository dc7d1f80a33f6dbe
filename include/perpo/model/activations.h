// Activation functions by their Hugging Face config names (hidden_act, projector_hidden_act).
#pragma once

#include <torch/types.h>

#include <string>

namespace perpo {

/// Applies the activation named as in transformers' ACT2FN:
///   quick_gelu  x * sigmoid(1.702 x)            (CLIP ViT-L/14)
///   gelu        exact erf GELU                   (LLaVA projector)
///   gelu_pytorch_tanh / gelu_new   tanh approximation
///   silu        x * sigmoid(x)                   (LLaMA SwiGLU gate)
///   relu
/// Throws an input error naming the activation when it is unknown.
torch::Tensor apply_activation(const std::string& name, const torch::Tensor& x);

/// Throws the same error as apply_activation for an unknown name (checked at construction).
void check_activation(const std::string& name, const std::string& where);

}  // namespace perpo
