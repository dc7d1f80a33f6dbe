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
// Random numbers are replayed: the forward records the states of the default generators (CPU, and
// the device of every input, e.g. CUDA), and the recomputation runs from those states and then
// restores the ones it found, as torch.utils.checkpoint's preserve_rng_state. So `fn` may use
// dropout: it sees the same masks twice. Everything else `fn` reads must be the same in backward
// as in forward, and what is not in `inputs` or `params` must not need a gradient.
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
