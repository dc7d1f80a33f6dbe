// Activation checkpointing for LibTorch C++ (which has no torch.utils.checkpoint): run a function
// without keeping its intermediate activations, and recompute them in the backward pass.
//
//   auto outputs = recompute_in_backward(
//       [&](const std::vector<torch::Tensor>& in) { return layer->forward(in[0], ...); },
//       {hidden}, layer->parameters());
//
// Forward runs `fn` under no-grad and keeps only its tensor inputs. Backward re-runs `fn` with grad
// enabled on detached copies of the inputs and differentiates the recomputed outputs with respect
// to those inputs and to `params` (the tensors `fn` reads from its captured module). The params are
// inputs of the autograd node, so their gradients accumulate into .grad the usual way.
//
// `fn` must be deterministic: RNG-using ops (dropout in training mode) would differ in the
// recomputation. Everything `fn` reads that is not in `inputs` or `params` must not need a
// gradient.
#pragma once

#include <torch/types.h>

#include <functional>
#include <vector>

namespace perpo {

using TensorListFn = std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>&)>;

/// Returns fn(inputs); when grad mode is off or nothing requires grad, simply calls fn.
/// Undefined entries of `inputs` are passed through to fn as undefined.
std::vector<torch::Tensor> recompute_in_backward(const TensorListFn& fn,
                                                 const std::vector<torch::Tensor>& inputs,
                                                 const std::vector<torch::Tensor>& params);

}  // namespace perpo
