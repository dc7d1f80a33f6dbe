#include "perpo/model/activations.h"

#include <torch/torch.h>

#include "perpo/core/error.h"

namespace perpo {
namespace {
bool known(const std::string& name) {
  return name == "quick_gelu" || name == "gelu" || name == "gelu_pytorch_tanh" ||
         name == "gelu_new" || name == "silu" || name == "swish" || name == "relu";
}
}  // namespace

void check_activation(const std::string& name, const std::string& where) {
  if (!known(name)) {
    throw input_error(where, ": unknown activation '", name, "'")
        .hint("use one of quick_gelu, gelu, gelu_pytorch_tanh, gelu_new, silu, relu");
  }
}

torch::Tensor apply_activation(const std::string& name, const torch::Tensor& x) {
  if (name == "quick_gelu") return x * torch::sigmoid(1.702 * x);
  if (name == "gelu") return torch::gelu(x);
  if (name == "gelu_pytorch_tanh" || name == "gelu_new") return torch::gelu(x, "tanh");
  if (name == "silu" || name == "swish") return torch::silu(x);
  if (name == "relu") return torch::relu(x);
  check_activation(name, "apply_activation");
  return x;  // unreachable
}

}  // namespace perpo
