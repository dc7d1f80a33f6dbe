// The reward functions (reward.h). Each is pure and total: any input yields a score and a note.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>

#include "perpo/reward/reward.h"
#include "perpo/reward/text.h"
#include "perpo/reward/text_metrics.h"

namespace perpo {
namespace {

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  });
}

RewardResult result(double score, std::string note) { return {score, std::move(note)}; }

/// The usable box of the ground truth, or nullopt. The truth is expected to hold one box, in
/// the dataset's units (read by the rule: normalised, or pixels of the image size).
std::optional<Box> truth_box(std::string_view truth, const RewardOptions& options) {
  auto candidates = parse_boxes(truth, truth_parse_options(options.box_parse));
  const BoxCandidate* candidate = select_box(candidates, BoxSelect::kFirst);
  if (!candidate || candidate->note != BoxNote::kOk) return std::nullopt;
  return candidate->box;
}

/// Shared part of the box rewards: selects the answer box and applies `overlap` to it.
template <typename Overlap>
RewardResult box_reward(std::string_view answer, std::string_view truth,
                        const RewardOptions& options, Overlap overlap) {
  if (is_blank(answer)) return result(0, "empty_answer");
  auto truth_value = truth_box(truth, options);
  if (!truth_value) return result(0, "bad_ground_truth");
  auto candidates = parse_boxes(answer, options.box_parse);
  const BoxCandidate* chosen = select_box(candidates, options.box_select, &*truth_value);
  if (!chosen) return result(0, "no_box");
  if (chosen->note != BoxNote::kOk) return result(0, box_note_name(chosen->note));
  return result(overlap(chosen->box, *truth_value), "ok");
}

TextNormalization text_normalization(const RewardOptions& options) {
  return {options.normalize_whitespace, options.lowercase};
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

/// Every number in `text`, in order: [sign] digits [. digits] [e [sign] digits], or a leading
/// point (".5"). Finite values only; each character is looked at a bounded number of times.
std::vector<double> numbers_in(std::string_view text) {
  std::vector<double> numbers;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t start = pos;
    std::size_t cursor = pos;
    if (text[cursor] == '-' || text[cursor] == '+') ++cursor;
    std::size_t digits = 0;
    while (cursor < text.size() && is_digit(text[cursor])) ++cursor, ++digits;
    if (cursor + 1 < text.size() && text[cursor] == '.' && is_digit(text[cursor + 1])) {
      ++cursor;
      while (cursor < text.size() && is_digit(text[cursor])) ++cursor, ++digits;
    }
    if (digits == 0) {
      pos = start + 1;
      continue;
    }
    if (cursor < text.size() && (text[cursor] == 'e' || text[cursor] == 'E')) {
      std::size_t exponent = cursor + 1;
      if (exponent < text.size() && (text[exponent] == '-' || text[exponent] == '+')) ++exponent;
      if (exponent < text.size() && is_digit(text[exponent])) {
        cursor = exponent;
        while (cursor < text.size() && is_digit(text[cursor])) ++cursor;
      }
    }
    std::string span(text.substr(start, cursor - start));
    double value = std::strtod(span.c_str(), nullptr);
    if (std::isfinite(value)) numbers.push_back(value);
    pos = cursor;
  }
  return numbers;
}

}  // namespace

RewardResult reward_iou(std::string_view answer, std::string_view truth,
                        const RewardOptions& options) {
  return box_reward(answer, truth, options, [](const Box& a, const Box& b) { return iou(a, b); });
}

RewardResult reward_giou(std::string_view answer, std::string_view truth,
                         const RewardOptions& options) {
  return box_reward(answer, truth, options,
                    [](const Box& a, const Box& b) { return (giou(a, b) + 1.0) / 2.0; });
}

RewardResult reward_ocr_edit(std::string_view answer, std::string_view truth,
                             const RewardOptions& options) {
  TextNormalization normalization = text_normalization(options);
  std::u32string predicted = normalize_text(decode_utf8(answer), normalization);
  std::u32string reference = normalize_text(decode_utf8(truth), normalization);
  if (predicted.empty() && !reference.empty()) return result(0, "empty_answer");
  return result(1.0 - normalized_edit_distance(predicted, reference), "ok");
}

RewardResult reward_exact_match(std::string_view answer, std::string_view truth,
                                const RewardOptions& options) {
  if (is_blank(answer)) return result(0, "empty_answer");
  auto clean = [&](std::string_view text) {
    std::u32string points = decode_utf8(text);
    std::size_t begin = 0, end = points.size();
    while (begin < end && is_unicode_space(points[begin])) ++begin;
    while (end > begin && is_unicode_space(points[end - 1])) --end;
    return normalize_text(std::u32string_view(points).substr(begin, end - begin),
                          text_normalization(options));
  };
  return result(clean(answer) == clean(truth) ? 1.0 : 0.0, "ok");
}

RewardResult reward_numeric(std::string_view answer, std::string_view truth,
                            const RewardOptions& options) {
  if (is_blank(answer)) return result(0, "empty_answer");
  std::vector<double> truth_numbers = numbers_in(truth);
  if (truth_numbers.empty()) return result(0, "bad_ground_truth");
  std::vector<double> answer_numbers = numbers_in(answer);
  if (answer_numbers.empty()) return result(0, "no_number");
  double target = truth_numbers.front();
  double value = answer_numbers.front();
  if (options.box_select == BoxSelect::kLast) value = answer_numbers.back();
  if (options.box_select == BoxSelect::kBest) {
    value = *std::min_element(
        answer_numbers.begin(), answer_numbers.end(),
        [&](double a, double b) { return std::fabs(a - target) < std::fabs(b - target); });
  }
  double tolerance = options.numeric_tolerance * std::max(1.0, std::fabs(target));
  return result(std::fabs(value - target) <= tolerance ? 1.0 : 0.0, "ok");
}

}  // namespace perpo
