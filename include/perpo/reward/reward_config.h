// RewardConfig (config.h, section `reward`) -> RewardOptions. Header-only, so the reward library
// itself needs nothing from the config library.
//
//   perpo::RewardOptions options = perpo::reward_options_from(config.reward);
//   const perpo::RewardSpec& spec = perpo::find_reward(
//       config.reward.name.empty() ? perpo::default_reward_for_task(task) : config.reward.name);
#pragma once

#include "perpo/config/config.h"
#include "perpo/reward/reward.h"

namespace perpo {

/// Options for the reward functions from the `reward` config section. The image size for pixel
/// boxes is per image and is set by the caller (options.box_parse).
inline RewardOptions reward_options_from(const RewardConfig& config) {
  RewardOptions options;
  options.box_select = parse_box_select(config.box_select);
  options.normalize_whitespace = config.normalize_whitespace;
  options.lowercase = config.lowercase;
  // auto: the model family's units, which the caller that has a model sets (BoxConvention in
  // generate/record_prompts.h); without one (perpo score) the rule of box.h.
  options.box_parse.units =
      config.box_format == "auto" ? BoxUnits::kInfer : parse_box_units(config.box_format);
  return options;
}

}  // namespace perpo
