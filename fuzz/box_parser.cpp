// Fuzz target: box parsing and the rewards built on it (reward module), on arbitrary answer text.
//
// Input: one control byte, then the text. The control byte picks the image size (unknown or
// 640x480, so pixel boxes are read both ways) and the box selection; the text is split at its
// first '\n' into an answer and a ground truth for the rewards.
//
// Checks: parse_boxes never throws and gives usable boxes inside [0, 1] with positive area, in
// order of appearance; a usable box printed by format_box parses back to (nearly) itself; IoU and
// GIoU stay in range; every reward returns a score in [0, 1] and a note, or an input error.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "perpo/reward/box.h"
#include "perpo/reward/reward.h"

namespace {

using perpo::Box;
using perpo::BoxCandidate;
using perpo::BoxNote;

bool inside_unit(double value) { return value >= 0.0 && value <= 1.0; }

void check_box(const Box& box) {
  PERPO_FUZZ_CHECK(
      inside_unit(box.x1) && inside_unit(box.y1) && inside_unit(box.x2) && inside_unit(box.y2),
      perpo::format_box(box, 6));
  PERPO_FUZZ_CHECK(box.x1 < box.x2 && box.y1 < box.y2, perpo::format_box(box, 6));
}

void check_round_trip(const Box& box) {
  const std::string text = perpo::format_box(box);
  const std::vector<BoxCandidate> again = perpo::parse_boxes(text);
  PERPO_FUZZ_CHECK(again.size() == 1, text);
  // Two decimals may merge two close corners into a degenerate box; nothing else may change.
  PERPO_FUZZ_CHECK(again[0].note == BoxNote::kOk || again[0].note == BoxNote::kDegenerate, text);
  const Box& back = again[0].box;
  const double tolerance = 0.005 + 1e-9;
  PERPO_FUZZ_CHECK(
      std::abs(back.x1 - box.x1) <= tolerance && std::abs(back.y1 - box.y1) <= tolerance &&
          std::abs(back.x2 - box.x2) <= tolerance && std::abs(back.y2 - box.y2) <= tolerance,
      text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  perpo::RewardOptions options;
  if (control & 1) options.box_parse = {640, 480};
  options.box_select = static_cast<perpo::BoxSelect>((control >> 1) % 3);
  options.normalize_whitespace = control & 8;
  options.lowercase = control & 16;

  std::vector<BoxCandidate> candidates;
  if (!perpo::fuzz::accepts([&] { candidates = perpo::parse_boxes(text, options.box_parse); })) {
    perpo::fuzz::fail("parse_boxes threw");
  }
  std::size_t previous_offset = 0;
  const Box* previous_ok = nullptr;
  for (const BoxCandidate& candidate : candidates) {
    PERPO_FUZZ_CHECK(candidate.offset < text.size(), "offset past the text");
    PERPO_FUZZ_CHECK(candidate.offset >= previous_offset, "candidates out of order");
    previous_offset = candidate.offset;
    if (candidate.note != BoxNote::kOk) continue;
    check_box(candidate.box);
    check_round_trip(candidate.box);
    PERPO_FUZZ_CHECK(std::abs(perpo::iou(candidate.box, candidate.box) - 1.0) < 1e-9, "IoU(b, b)");
    if (previous_ok) {
      const double overlap = perpo::iou(candidate.box, *previous_ok);
      const double g = perpo::giou(candidate.box, *previous_ok);
      PERPO_FUZZ_CHECK(overlap >= 0.0 && overlap <= 1.0, std::to_string(overlap));
      PERPO_FUZZ_CHECK(g >= -1.0 && g <= 1.0 + 1e-12, std::to_string(g));
    }
    previous_ok = &candidate.box;
  }
  const BoxCandidate* selected = perpo::select_box(candidates, options.box_select, previous_ok);
  PERPO_FUZZ_CHECK(candidates.empty() == (selected == nullptr), "select_box");

  const std::size_t newline = text.find('\n');
  const std::string_view answer = text.substr(0, newline);
  const std::string_view truth =
      newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
  for (const perpo::RewardSpec& spec : perpo::reward_registry()) {
    perpo::RewardResult result;
    if (!perpo::fuzz::accepts([&] { result = spec.score(answer, truth, options); })) continue;
    PERPO_FUZZ_CHECK(result.score >= 0.0 && result.score <= 1.0,
                     std::string(spec.name) + " scored " + std::to_string(result.score));
    PERPO_FUZZ_CHECK(!result.note.empty(), std::string(spec.name) + " gave no note");
  }
  return 0;
}
