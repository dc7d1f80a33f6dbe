// The reward registry: name -> function. Registering a reward is one line in the table below.
#include "perpo/core/error.h"
#include "perpo/core/strings.h"
#include "perpo/reward/reward.h"

namespace perpo {

const std::vector<RewardSpec>& reward_registry() {
  static const std::vector<RewardSpec> table = {
      {"iou", &reward_iou, "grounding: IoU of the answer's box with the ground-truth box"},
      {"giou", &reward_giou, "grounding: (GIoU + 1) / 2, ranks disjoint boxes by distance"},
      {"ocr_edit", &reward_ocr_edit, "OCR: 1 - Levenshtein / longer length, on code points"},
      {"exact_match", &reward_exact_match, "1 if the trimmed answer equals the ground truth"},
      {"numeric", &reward_numeric, "1 if the answer's number equals the ground truth's"},
  };
  return table;
}

std::vector<std::string> reward_names() {
  std::vector<std::string> names;
  for (const auto& spec : reward_registry()) names.emplace_back(spec.name);
  return names;
}

const RewardSpec& find_reward(std::string_view name) {
  for (const auto& spec : reward_registry()) {
    if (name == spec.name) return spec;
  }
  auto names = reward_names();
  auto error = input_error("unknown reward '", name, "'");
  if (auto suggestion = closest_match(name, names)) {
    throw std::move(error).hint("did you mean '" + *suggestion + "'? known: " + join(names, ", "));
  }
  throw std::move(error).hint("known rewards: " + join(names, ", "));
}

const RewardSpec& reward_for_task(std::string_view task, const std::string& name,
                                  const std::string& who) {
  if (!name.empty()) return find_reward(name);
  try {
    return find_reward(default_reward_for_task(task));
  } catch (const Error& e) {
    throw input_error(who, ": ", e.message())
        .hint("set reward.name, or give the record a task (grounding, ocr)");
  }
}

std::string default_reward_for_task(std::string_view task) {
  if (task == "grounding") return "iou";
  if (task == "ocr") return "ocr_edit";
  throw input_error("no default reward for task '", task, "'")
      .hint("set reward.name to one of: " + join(reward_names(), ", "));
}

}  // namespace perpo
