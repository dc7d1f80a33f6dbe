// Learning-rate schedules: the multiplier of each parameter group's peak lr at an optimizer step.
//
//   double scale = perpo::lr_multiplier(step, total_steps, config.optim);   // step = 0, 1, ...
//
// Step indices count optimizer steps from 0, as transformers' get_*_schedule_with_warmup do, and
// the formulas are theirs (so a recipe ported from an HF trainer gets the same learning rates):
//   warmup (step < W):  step / W                       (the very first step has lr 0 with W > 0)
//   after,  p = (step - W) / max(1, total - W):
//     cosine    m + (1 - m) * 0.5 * (1 + cos(pi * p))
//     linear    m + (1 - m) * (1 - p)
//     constant  1
// with m = optim.min_lr_ratio (0 in transformers) and p clamped to [0, 1].
#pragma once

#include <cstdint>

#include "perpo/config/config.h"

namespace perpo {

/// Multiplier in [0, 1] of the peak learning rate at 0-based optimizer step `step` of
/// `total_steps`. Throws perpo::Error (input) for an unknown optim.schedule.
double lr_multiplier(std::int64_t step, std::int64_t total_steps, const OptimConfig& config);

}  // namespace perpo
