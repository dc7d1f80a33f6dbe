// Gradient all-reduce overlapped with the last backward (gradient_reducer.h).
#include "perpo/dist/gradient_reducer.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <algorithm>

namespace perpo {

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

// Runs on the thread that runs the backward (the caller's on CPU, the device's thread on CUDA),
// after the parameter's .grad was accumulated.
struct GradientReducer::Hook : torch::autograd::PostAccumulateGradHook {
  Hook(GradientReducer* reducer, std::size_t param) : reducer(reducer), param(param) {}
  void operator()(const torch::autograd::Variable& /*param*/) override { reducer->on_ready(param); }
  GradientReducer* reducer;
  std::size_t param;
};

GradientReducer::GradientReducer(const ProcessGroup& group, const std::vector<at::Tensor>& params,
                                 std::size_t bucket_bytes, bool overlap)
    : group_(group), params_(params), overlap_(overlap) {
  if (group_.world() == 1) return;
  bucket_of_.assign(params_.size(), 0);
  ready_.assign(params_.size(), false);
  // Reverse parameter order: backward produces the last layers' gradients first.
  std::size_t bytes = 0;
  for (std::size_t k = params_.size(); k-- > 0;) {
    const at::Tensor& p = params_[k];
    const bool fits = !buckets_.empty() && bytes < bucket_bytes &&
                      params_[buckets_.back().params.front()].scalar_type() == p.scalar_type() &&
                      params_[buckets_.back().params.front()].device() == p.device();
    if (!fits) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().params.push_back(k);
    bytes += static_cast<std::size_t>(p.numel()) * p.element_size();
    bucket_of_[k] = buckets_.size() - 1;
  }
  if (!overlap_) return;
  for (std::size_t k = 0; k < params_.size(); ++k) {
    torch::autograd::impl::set_post_acc_grad_hooks(params_[k], std::make_unique<Hook>(this, k));
  }
}

GradientReducer::~GradientReducer() {
  if (overlap_) {
    for (const at::Tensor& p : params_) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
  }
  // A step cut short by an error: its collectives still hold their buffers; let them end.
  for (Bucket& bucket : buckets_) {
    if (bucket.work.pending()) {
      try {
        bucket.work.wait();
      } catch (const std::exception&) {
      }
    }
  }
}

void GradientReducer::arm() {
  if (buckets_.empty() || !overlap_) return;
  std::fill(ready_.begin(), ready_.end(), false);
  for (Bucket& bucket : buckets_) bucket.waiting = bucket.params.size();
  armed_ = true;
}

void GradientReducer::on_ready(std::size_t param) {
  if (!armed_ || ready_[param]) return;
  ready_[param] = true;
  Bucket& bucket = buckets_[bucket_of_[param]];
  if (--bucket.waiting == 0) launch_ready();
}

void GradientReducer::launch_ready() {
  while (next_ < buckets_.size() && buckets_[next_].waiting == 0) {
    launch(buckets_[next_]);
    ++launched_by_hooks_;
    ++next_;
  }
}

void GradientReducer::launch(Bucket& bucket) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  for (std::size_t k : bucket.params) {
    at::Tensor& grad = params_[k].mutable_grad();
    if (!grad.defined()) grad = torch::zeros_like(params_[k]);  // unused in the whole step
    grads.push_back(grad.reshape({-1}));
  }
  bucket.flat = torch::cat(grads);
  bucket.work = group_.all_reduce_sum_async(bucket.flat);
  bucket.launched = true;
}

void GradientReducer::finish() {
  if (buckets_.empty()) return;
  backward_end_ = Clock::now();
  armed_ = false;
  timing_.buckets = static_cast<int>(buckets_.size());
  timing_.launched_in_backward = launched_by_hooks_;
  launched_by_hooks_ = 0;
  // The buckets the hooks did not start, in the same order on every rank.
  for (; next_ < buckets_.size(); ++next_) launch(buckets_[next_]);
  // The union of the all-reduces' running times before the backward ended (one after another,
  // from launch to end, overlaps counted once).
  double hidden = 0;
  Clock::time_point covered = Clock::time_point::min();
  torch::NoGradGuard no_grad;
  double waited = 0;  // blocked in wait(), as comm_seconds counts it
  for (Bucket& bucket : buckets_) {
    const Clock::time_point wait_start = Clock::now();
    bucket.work.wait();
    waited += seconds(Clock::now() - wait_start);
    const Clock::time_point from = std::max(bucket.work.launched(), covered);
    const Clock::time_point to = std::min(bucket.work.ended(), backward_end_);
    if (to > from) hidden += seconds(to - from);
    covered = std::max(covered, std::min(bucket.work.ended(), backward_end_));
    std::int64_t offset = 0;
    for (std::size_t k : bucket.params) {
      at::Tensor& grad = params_[k].mutable_grad();
      grad.copy_(bucket.flat.narrow(0, offset, grad.numel()).view_as(grad));
      offset += grad.numel();
    }
    bucket.flat = at::Tensor();
    bucket.launched = false;
  }
  timing_.waited_s = waited;
  timing_.hidden_s = hidden;
  next_ = 0;
}

}  // namespace perpo
