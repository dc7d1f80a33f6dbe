// Learning-rate schedules (see schedule.h for the formulas).
#include "perpo/train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "perpo/core/error.h"

namespace perpo {

double lr_multiplier(std::int64_t step, std::int64_t total_steps, const OptimConfig& config) {
  const std::int64_t warmup = config.warmup_steps;
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(warmup);
  const double m = config.min_lr_ratio;
  double progress = static_cast<double>(step - warmup) /
                    static_cast<double>(std::max<std::int64_t>(1, total_steps - warmup));
  progress = std::clamp(progress, 0.0, 1.0);
  if (config.schedule == "cosine") {
    return m + (1.0 - m) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  }
  if (config.schedule == "linear") return m + (1.0 - m) * (1.0 - progress);
  if (config.schedule == "constant") return 1.0;
  throw input_error("key 'optim.schedule' must be cosine, linear or constant; got '",
                    config.schedule, "'");
}

}  // namespace perpo
