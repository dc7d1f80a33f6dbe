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

void check_ground_truth(const RewardSpec& spec, std::string_view truth,
                        const RewardOptions& options, const std::string& who) {
  const bool blank = truth.find_first_not_of(" \t\r\n") == std::string_view::npos;
  if (blank) {
    throw input_error(who, ": the ground truth is empty; reward '", spec.name,
                      "' cannot score answers against it")
        .hint(
            "give the record its ground truth, or skip such records with "
            "data.on_bad_record=skip");
  }
  // A truth the reward cannot use scores its own text as "bad_ground_truth".
  RewardOptions as_truth = options;
  as_truth.box_parse = truth_parse_options(options.box_parse);
  const RewardResult self = spec.score(truth, truth, as_truth);
  const std::string name = spec.name;
  if ((name == "iou" || name == "giou") && self.note != "bad_ground_truth") {
    // Answers with swapped corners are read kindly; a truth with them is a broken record.
    const auto boxes = parse_boxes(truth, as_truth.box_parse);
    const BoxCandidate* box = select_box(boxes, BoxSelect::kFirst);
    if (box != nullptr && box->corners_swapped) {
      throw input_error(who, ": the ground-truth box '", std::string(truth.substr(0, 80)),
                        "' has x1 > x2 or y1 > y2")
          .hint(
              "a grounding truth is [x1, y1, x2, y2] with x1 < x2 and y1 < y2; fix the record "
              "or skip such records with data.on_bad_record=skip");
    }
  }
  if (self.note == "bad_ground_truth") {
    throw input_error(who, ": reward '", spec.name, "' cannot use the ground truth '",
                      std::string(truth.substr(0, 80)), "'")
        .hint(name == "iou" || name == "giou"
                  ? "a grounding truth is one finite box [x1, y1, x2, y2] with x1 < x2 and "
                    "y1 < y2, e.g. [0.61, 0.10, 0.77, 0.54]; skip such records with "
                    "data.on_bad_record=skip"
                  : "fix the ground truth, or skip such records with data.on_bad_record=skip");
  }
}

std::string default_reward_for_task(std::string_view task) {
  if (task == "grounding") return "iou";
  if (task == "ocr") return "ocr_edit";
  throw input_error("no default reward for task '", task, "'")
      .hint("set reward.name to one of: " + join(reward_names(), ", "));
}

}  // namespace perpo
