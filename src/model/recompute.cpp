#include "perpo/model/recompute.h"

#include <ATen/Context.h>
#include <torch/torch.h>

#include <algorithm>
#include <mutex>
#include <utility>

#include "perpo/core/error.h"

namespace perpo {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// The states of the default random generators that `fn` may draw from: the CPU one and one per
/// accelerator device that holds an input (as torch.utils.checkpoint's preserve_rng_state).
struct RngStates {
  std::vector<std::pair<c10::Device, torch::Tensor>> states;

  static RngStates capture(const std::vector<torch::Tensor>& inputs) {
    std::vector<c10::Device> devices{c10::Device(c10::kCPU)};
    for (const auto& x : inputs) {
      if (x.defined() && std::find(devices.begin(), devices.end(), x.device()) == devices.end())
        devices.push_back(x.device());
    }
    RngStates captured;
    for (const c10::Device& device : devices) {
      at::Generator generator = at::globalContext().defaultGenerator(device);
      std::lock_guard<std::mutex> lock(generator.mutex());
      captured.states.emplace_back(device, generator.get_state());
    }
    return captured;
  }

  void restore() const {
    for (const auto& [device, state] : states) {
      at::Generator generator = at::globalContext().defaultGenerator(device);
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(state);
    }
  }
};

/// Sets the generators to `replayed` for its lifetime, then puts back the states it found, so the
/// recomputation neither sees fresh random numbers nor disturbs the caller's random stream.
class RngReplay {
 public:
  RngReplay(const RngStates& replayed, const std::vector<torch::Tensor>& inputs)
      : saved_(RngStates::capture(inputs)) {
    replayed.restore();
  }
  ~RngReplay() { saved_.restore(); }
  RngReplay(const RngReplay&) = delete;
  RngReplay& operator=(const RngReplay&) = delete;

 private:
  RngStates saved_;
};

/// Holds the function across forward and backward (AutogradContext stores only IValues).
struct FnHolder : torch::CustomClassHolder {
  TensorListFn fn;
  RngStates rng;                      // the generators' states when the forward ran fn
  std::vector<bool> input_defined;    // which of fn's inputs were defined
  std::size_t num_inputs = 0;         // leading tensors of the list that are fn's inputs
  std::vector<torch::Tensor> params;  // the rest of the list
};

std::vector<torch::Tensor> rebuild_inputs(const FnHolder& holder, const variable_list& tensors) {
  std::vector<torch::Tensor> inputs;
  std::size_t next = 0;
  for (bool defined : holder.input_defined)
    inputs.push_back(defined ? tensors[next++] : torch::Tensor());
  return inputs;
}

struct RecomputeFunction : torch::autograd::Function<RecomputeFunction> {
  // tensors = defined inputs of fn, then params
  static variable_list forward(AutogradContext* ctx, c10::intrusive_ptr<FnHolder> holder,
                               torch::TensorList tensors) {
    variable_list inputs_only(tensors.begin(), tensors.begin() + holder->num_inputs);
    ctx->save_for_backward(inputs_only);
    ctx->saved_data["fn"] = c10::IValue::make_capsule(holder);
    holder->rng = RngStates::capture(inputs_only);
    std::vector<torch::Tensor> outputs = holder->fn(rebuild_inputs(*holder, inputs_only));
    return outputs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto capsule = ctx->saved_data["fn"].toCapsule();
    auto* holder = static_cast<FnHolder*>(capsule.get());
    variable_list saved = ctx->get_saved_variables();
    // The node's inputs: slot 0 is the holder (not a tensor), then the tensor list.
    variable_list detached;
    for (const auto& x : saved) detached.push_back(x.detach().requires_grad_(x.requires_grad()));
    variable_list outputs;
    {
      // Same random numbers as the forward (dropout masks), the caller's stream left untouched.
      RngReplay replay(holder->rng, detached);
      torch::AutoGradMode enable_grad(true);
      outputs = holder->fn(rebuild_inputs(*holder, detached));
    }
    const auto& params = holder->params;
    const std::size_t num_params = params.size();

    variable_list targets;         // tensors to differentiate with respect to
    std::vector<int> target_slot;  // their position in the returned gradient list (minus 1)
    for (std::size_t i = 0; i < detached.size(); ++i) {
      if (detached[i].requires_grad()) {
        targets.push_back(detached[i]);
        target_slot.push_back(static_cast<int>(i));
      }
    }
    for (std::size_t i = 0; i < num_params; ++i) {
      if (params[i].requires_grad()) {
        targets.push_back(params[i]);
        target_slot.push_back(static_cast<int>(detached.size() + i));
      }
    }
    variable_list chosen_outputs, chosen_grads;
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      if (outputs[i].defined() && outputs[i].requires_grad() && grad_outputs[i].defined()) {
        chosen_outputs.push_back(outputs[i]);
        chosen_grads.push_back(grad_outputs[i]);
      }
    }
    variable_list result(1 + detached.size() + num_params);
    if (targets.empty() || chosen_outputs.empty()) return result;
    variable_list grads = torch::autograd::grad(chosen_outputs, targets, chosen_grads,
                                                /*retain_graph=*/false, /*create_graph=*/false,
                                                /*allow_unused=*/true);
    for (std::size_t j = 0; j < grads.size(); ++j) result[1 + target_slot[j]] = grads[j];
    return result;
  }
};

}  // namespace

std::vector<torch::Tensor> recompute_in_backward(const TensorListFn& fn,
                                                 const std::vector<torch::Tensor>& inputs,
                                                 const std::vector<torch::Tensor>& params) {
  bool needs_grad = false;
  for (const auto& x : inputs) needs_grad = needs_grad || (x.defined() && x.requires_grad());
  for (const auto& p : params) needs_grad = needs_grad || p.requires_grad();
  if (!torch::GradMode::is_enabled() || !needs_grad) return fn(inputs);

  auto holder = c10::make_intrusive<FnHolder>();
  holder->fn = fn;
  std::vector<torch::Tensor> tensors;
  for (const auto& x : inputs) {
    holder->input_defined.push_back(x.defined());
    if (x.defined()) tensors.push_back(x);
  }
  holder->num_inputs = tensors.size();
  holder->params = params;
  tensors.insert(tensors.end(), params.begin(), params.end());
  return RecomputeFunction::apply(holder, torch::TensorList(tensors));
}

}  // namespace perpo
