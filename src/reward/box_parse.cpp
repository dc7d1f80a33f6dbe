// Box parsing from free text (see box.h for the accepted forms and the coordinate rules).
//
// One left-to-right pass. At every '[', '(' or "<|box_start|>" / "<box>" the scanner tries to read
// a list of numbers; an attempt stops at the first character that cannot continue it, and the
// scan resumes one character later. An attempt never crosses another opening bracket, so nested
// or unbalanced brackets ("[[[[0.1, ...", "(((") cost linear time, not quadratic.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>

#include "perpo/core/error.h"
#include "perpo/reward/box.h"

namespace perpo {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::size_t skip_spaces(std::string_view text, std::size_t pos) {
  while (pos < text.size() && is_space(text[pos])) ++pos;
  return pos;
}

bool starts_with_ci(std::string_view text, std::size_t pos, std::string_view word) {
  if (text.size() - pos < word.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (lower_ascii(text[pos + i]) != word[i]) return false;
  }
  return true;
}

/// Reads a decimal number (sign, digits, point, exponent) or nan / inf / infinity at `pos`.
/// On success advances `pos`. Values too large for a double become +-inf.
std::optional<double> read_number(std::string_view text, std::size_t& pos) {
  std::size_t cursor = pos;
  bool negative = false;
  if (cursor < text.size() && (text[cursor] == '+' || text[cursor] == '-')) {
    negative = text[cursor] == '-';
    ++cursor;
  }
  double sign = negative ? -1.0 : 1.0;
  if (starts_with_ci(text, cursor, "nan")) {
    pos = cursor + 3;
    return std::numeric_limits<double>::quiet_NaN();
  }
  if (starts_with_ci(text, cursor, "inf")) {
    pos = cursor + (starts_with_ci(text, cursor, "infinity") ? 8 : 3);
    return sign * std::numeric_limits<double>::infinity();
  }
  std::size_t start = cursor;
  std::size_t digits = 0;
  while (cursor < text.size() && is_digit(text[cursor])) ++cursor, ++digits;
  if (cursor < text.size() && text[cursor] == '.') {
    ++cursor;
    while (cursor < text.size() && is_digit(text[cursor])) ++cursor, ++digits;
  }
  if (digits == 0) return std::nullopt;
  if (cursor < text.size() && (text[cursor] == 'e' || text[cursor] == 'E')) {
    std::size_t exponent = cursor + 1;
    if (exponent < text.size() && (text[exponent] == '+' || text[exponent] == '-')) ++exponent;
    if (exponent < text.size() && is_digit(text[exponent])) {
      cursor = exponent;
      while (cursor < text.size() && is_digit(text[cursor])) ++cursor;
    }
  }
  double value = 0;
  auto [end, error] = std::from_chars(text.data() + start, text.data() + cursor, value);
  if (error == std::errc::result_out_of_range) {
    // Overflow or underflow: strtod tells which (HUGE_VAL vs 0), from_chars does not.
    std::string copy(text.substr(start, cursor - start));
    value = std::strtod(copy.c_str(), nullptr);
  } else if (error != std::errc() || end != text.data() + cursor) {
    return std::nullopt;
  }
  pos = cursor;
  return sign * value;
}

/// Reads "v, v, v ...<close>" after an opening bracket (separators: commas and/or spaces).
/// Returns the values and sets `pos` past `close`, or nullopt if anything else comes first.
std::optional<std::vector<double>> read_number_list(std::string_view text, std::size_t& pos,
                                                    char close) {
  std::vector<double> values;
  std::size_t cursor = skip_spaces(text, pos);
  while (true) {
    if (cursor >= text.size()) return std::nullopt;
    if (text[cursor] == close) break;
    auto value = read_number(text, cursor);
    if (!value) return std::nullopt;
    if (values.size() < 64)
      values.push_back(*value);  // a span with > 64 values is malformed anyway
    cursor = skip_spaces(text, cursor);
    if (cursor < text.size() && text[cursor] == ',') cursor = skip_spaces(text, cursor + 1);
  }
  if (values.empty()) return std::nullopt;
  pos = cursor + 1;
  return values;
}

/// Reads "(a, b) , (c, d)" starting at the first '(' into four values.
std::optional<std::vector<double>> read_corner_pairs(std::string_view text, std::size_t& pos) {
  std::size_t cursor = pos;
  if (cursor >= text.size() || text[cursor] != '(') return std::nullopt;
  ++cursor;
  auto first = read_number_list(text, cursor, ')');
  if (!first || first->size() != 2) return std::nullopt;
  cursor = skip_spaces(text, cursor);
  if (cursor < text.size() && text[cursor] == ',') cursor = skip_spaces(text, cursor + 1);
  if (cursor >= text.size() || text[cursor] != '(') return std::nullopt;
  ++cursor;
  auto second = read_number_list(text, cursor, ')');
  if (!second || second->size() != 2) return std::nullopt;
  pos = cursor;
  return std::vector<double>{(*first)[0], (*first)[1], (*second)[0], (*second)[1]};
}

/// Turns four raw values into a normalised box and its note (see box.h for the rules).
BoxCandidate make_candidate(const std::vector<double>& values, BoxFormat format, std::size_t offset,
                            const BoxParseOptions& options) {
  BoxCandidate candidate;
  candidate.format = format;
  candidate.offset = offset;
  if (values.size() != 4) {
    candidate.note = BoxNote::kMalformed;
    return candidate;
  }
  double v[4] = {values[0], values[1], values[2], values[3]};
  for (double value : v) {
    if (!std::isfinite(value)) {
      candidate.note = BoxNote::kNonFinite;
      return candidate;
    }
  }
  const bool all_unit = std::all_of(v, v + 4, [](double x) { return x >= 0.0 && x <= 1.0; });
  const bool pixels =
      options.units == BoxUnits::kPixels || (options.units == BoxUnits::kInfer && !all_unit);
  if (format == BoxFormat::kScaled1000 || options.units == BoxUnits::kScale1000) {
    for (double& value : v) value /= 1000.0;
  } else if (pixels) {
    if (options.image_width <= 0 || options.image_height <= 0) {
      candidate.note = BoxNote::kOutOfRange;  // pixels, but no image size to normalise by
      return candidate;
    }
    v[0] /= options.image_width;
    v[2] /= options.image_width;
    v[1] /= options.image_height;
    v[3] /= options.image_height;
  }
  if (!std::all_of(v, v + 4, [](double x) { return x >= 0.0 && x <= 1.0; })) {
    candidate.note = BoxNote::kOutOfRange;
    return candidate;
  }
  Box box{v[0], v[1], v[2], v[3]};
  if (box.x1 > box.x2 || box.y1 > box.y2) candidate.corners_swapped = true;
  if (box.x1 > box.x2) std::swap(box.x1, box.x2);
  if (box.y1 > box.y2) std::swap(box.y1, box.y2);
  candidate.box = box;
  // Zero area also when width * height underflows ([0, 0, 1e-200, 1e-200]): such a box would
  // score IoU 0 against itself (found by fuzz/box_parser.cpp).
  candidate.note = box.area() > 0 ? BoxNote::kOk : BoxNote::kDegenerate;
  return candidate;
}

constexpr std::string_view kQwenStart = "<|box_start|>";
constexpr std::string_view kQwenEnd = "<|box_end|>";
constexpr std::string_view kQwenVlStart = "<box>";
constexpr std::string_view kQwenVlEnd = "</box>";

}  // namespace

const char* box_note_name(BoxNote note) {
  switch (note) {
    case BoxNote::kOk:
      return "ok";
    case BoxNote::kMalformed:
      return "malformed_box";
    case BoxNote::kNonFinite:
      return "non_finite_box";
    case BoxNote::kOutOfRange:
      return "out_of_range_box";
    case BoxNote::kDegenerate:
      return "degenerate_box";
  }
  return "unknown";
}

std::vector<BoxCandidate> parse_boxes(std::string_view text, const BoxParseOptions& options) {
  std::vector<BoxCandidate> candidates;
  std::size_t pos = 0;
  while (pos < text.size()) {
    char c = text[pos];
    std::size_t cursor = pos;
    if (c == '<') {
      std::string_view start_token;
      std::string_view end_token;
      if (text.substr(pos, kQwenStart.size()) == kQwenStart) {
        start_token = kQwenStart, end_token = kQwenEnd;
      } else if (text.substr(pos, kQwenVlStart.size()) == kQwenVlStart) {
        start_token = kQwenVlStart, end_token = kQwenVlEnd;
      }
      if (!start_token.empty()) {
        cursor = skip_spaces(text, pos + start_token.size());
        if (auto values = read_corner_pairs(text, cursor)) {
          candidates.push_back(make_candidate(*values, BoxFormat::kScaled1000, pos, options));
          cursor = skip_spaces(text, cursor);
          if (text.substr(cursor, end_token.size()) == end_token) cursor += end_token.size();
          pos = cursor;
          continue;
        }
      }
    } else if (c == '[') {
      ++cursor;
      if (auto values = read_number_list(text, cursor, ']')) {
        candidates.push_back(make_candidate(*values, BoxFormat::kBracketList, pos, options));
        pos = cursor;
        continue;
      }
    } else if (c == '(') {
      if (auto values = read_corner_pairs(text, cursor)) {
        candidates.push_back(make_candidate(*values, BoxFormat::kCornerPairs, pos, options));
        pos = cursor;
        continue;
      }
      cursor = pos + 1;  // "(x1, y1, x2, y2)": a four-value list in parentheses
      auto values = read_number_list(text, cursor, ')');
      if (values && values->size() == 4) {
        candidates.push_back(make_candidate(*values, BoxFormat::kBracketList, pos, options));
        pos = cursor;
        continue;
      }
    }
    ++pos;
  }
  return candidates;
}

BoxUnits parse_box_units(std::string_view name) {
  for (BoxUnits units :
       {BoxUnits::kInfer, BoxUnits::kNormalized, BoxUnits::kPixels, BoxUnits::kScale1000}) {
    if (name == box_units_name(units)) return units;
  }
  throw input_error("unknown box units '", name, "'")
      .hint("use infer, normalized, pixels or scale_1000");
}

const char* box_units_name(BoxUnits units) {
  switch (units) {
    case BoxUnits::kInfer:
      return "infer";
    case BoxUnits::kNormalized:
      return "normalized";
    case BoxUnits::kPixels:
      return "pixels";
    case BoxUnits::kScale1000:
      return "scale_1000";
  }
  return "unknown";
}

BoxSelect parse_box_select(std::string_view name) {
  if (name == "first") return BoxSelect::kFirst;
  if (name == "last") return BoxSelect::kLast;
  if (name == "best") return BoxSelect::kBest;
  throw input_error("unknown box selection '", name, "'").hint("use first, last or best");
}

const BoxCandidate* select_box(const std::vector<BoxCandidate>& candidates, BoxSelect select,
                               const Box* truth) {
  const BoxCandidate* first = nullptr;
  const BoxCandidate* last = nullptr;
  const BoxCandidate* best = nullptr;
  double best_iou = -1;
  for (const auto& candidate : candidates) {
    if (candidate.note == BoxNote::kMalformed) continue;
    if (!first) first = &candidate;
    last = &candidate;
    if (truth && candidate.note == BoxNote::kOk) {
      double overlap = iou(candidate.box, *truth);
      if (overlap > best_iou) best_iou = overlap, best = &candidate;
    }
  }
  if (!first) return candidates.empty() ? nullptr : &candidates.front();  // malformed only
  switch (select) {
    case BoxSelect::kFirst:
      return first;
    case BoxSelect::kLast:
      return last;
    case BoxSelect::kBest:
      return best ? best : first;
  }
  return first;
}

}  // namespace perpo
