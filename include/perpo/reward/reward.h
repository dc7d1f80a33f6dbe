// Discriminative rewards: pure functions of (answer text, ground truth, options) -> score + note.
//
//   const perpo::RewardSpec& spec = perpo::find_reward("iou");
//   perpo::RewardResult r = spec.score("[0.61, 0.17, 0.77, 0.53]", "[0.61, 0.1, 0.77, 0.54]", {});
//   // r.score = 9/11 ~ 0.82, r.note == "ok"
//
// Every score lies in [0, 1] (higher is better) and comes with a short note that says why it is
// what it is; `perpo score` and the samplers count the notes. Notes:
//   ok                 scored normally (a wrong answer is still "ok": the score says how wrong)
//   empty_answer       the answer is empty or whitespace only (score 0)
//   no_box             no box-like span in the answer (score 0)
//   malformed_box, non_finite_box, out_of_range_box, degenerate_box   see box.h (score 0)
//   no_number          numeric: no number in the answer (score 0)
//   bad_ground_truth   the ground truth itself could not be used (score 0)
//
// Adding a reward: write the function below and add one line to the table in reward_registry.cpp.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "perpo/reward/box.h"

namespace perpo {

struct RewardResult {
  double score = 0;  // in [0, 1]
  std::string note;  // "ok", "no_box", ... (above)
};

struct RewardOptions {
  BoxSelect box_select = BoxSelect::kFirst;  // which box of several (also: which number)
  BoxParseOptions box_parse;                 // image size for pixel boxes
  bool normalize_whitespace = false;         // OCR / exact match: collapse whitespace runs
  bool lowercase = false;                    // OCR / exact match / numeric text: ignore case
  double numeric_tolerance = 1e-6;           // numeric: |a - t| <= tol * max(1, |t|) scores 1
};

/// Grounding: IoU of the selected answer box with the ground-truth box.
RewardResult reward_iou(std::string_view answer, std::string_view truth,
                        const RewardOptions& options);
/// Grounding: GIoU mapped to [0, 1] as (GIoU + 1) / 2, so disjoint boxes still rank by distance.
RewardResult reward_giou(std::string_view answer, std::string_view truth,
                         const RewardOptions& options);
/// OCR: 1 - Levenshtein(answer, truth) / max(|answer|, |truth|) on code points (after the
/// optional normalisations). Both empty: 1.
RewardResult reward_ocr_edit(std::string_view answer, std::string_view truth,
                             const RewardOptions& options);
/// 1 when answer and truth are equal after trimming (and the optional normalisations), else 0.
RewardResult reward_exact_match(std::string_view answer, std::string_view truth,
                                const RewardOptions& options);
/// 1 when the answer's number (first / last / closest by box_select) equals the truth's first
/// number within numeric_tolerance, else 0. Thousands separators are not understood.
RewardResult reward_numeric(std::string_view answer, std::string_view truth,
                            const RewardOptions& options);

using RewardFunction = RewardResult (*)(std::string_view answer, std::string_view truth,
                                        const RewardOptions& options);

struct RewardSpec {
  const char* name;  // as in config reward.name and `perpo score --reward`
  RewardFunction score;
  const char* description;  // one line for --help
};

/// All registered rewards, in table order.
const std::vector<RewardSpec>& reward_registry();
/// The names of all registered rewards.
std::vector<std::string> reward_names();
/// The reward called `name`; throws perpo::Error (input) with a "did you mean" hint otherwise.
const RewardSpec& find_reward(std::string_view name);
/// The default reward of a dataset task: grounding -> iou, ocr -> ocr_edit; throws otherwise.
std::string default_reward_for_task(std::string_view task);
/// The reward of a record: `name` (config reward.name) when set, else its task's default. When
/// neither gives one, throws perpo::Error (input) starting with `who` (the record's name).
const RewardSpec& reward_for_task(std::string_view task, const std::string& name,
                                  const std::string& who);

/// Throws perpo::Error (input) starting with `who` when `spec` cannot score answers against
/// `truth`: an empty truth, or one the reward reports as bad_ground_truth (no box, a NaN,
/// degenerate or inverted box for iou / giou; no number for numeric). Such a record is a bad
/// record (refused, or skipped with data.on_bad_record=skip), never scored as if its answers
/// were wrong.
void check_ground_truth(const RewardSpec& spec, std::string_view truth,
                        const RewardOptions& options, const std::string& who);

}  // namespace perpo
