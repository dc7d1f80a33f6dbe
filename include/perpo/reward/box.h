// Boxes in answer text: parsing, canonical formatting, IoU / GIoU.
//
// Every box perpo works with is normalised: corners (x1, y1) top-left and (x2, y2) bottom-right,
// each coordinate a fraction of the image width / height in [0, 1]. The parser accepts the forms
// models actually write and converts them to that:
//
//   "[0.61, 0.1, 0.77, 0.54]"                  normalised (LLaVA-1.5 RefCOCO style), any decimals
//   "The glass is at [0.61,0.10 ,0.77, 0.54]."  surrounding text and odd spacing are fine
//   "[243, 40, 308, 216]"                      pixels: needs the image size (BoxParseOptions)
//   "(0.61, 0.10, 0.77, 0.54)"                 four values in parentheses, like the brackets
//   "(0.61,0.10),(0.77,0.54)" / "(243,40),(308,216)"   corner pairs, normalised or pixels
//   "<|box_start|>(610,100),(770,540)<|box_end|>"     Qwen-style, integers on a 0-1000 scale
//   "<box>(610,100),(770,540)</box>"                   Qwen-VL-style, same scale
//
// Rule for the plain forms: a box whose four values all lie in [0, 1] is normalised; otherwise it
// is in pixels if the image size is known, else it is reported out of range. Corners given in the
// wrong order (x1 > x2 or y1 > y2) are swapped. Problems are reported, never thrown: see BoxNote.
// Values are separated by commas and/or spaces; exponents, nan and inf are read (and reported).
// An answer may hold several boxes: parse_boxes returns them all in order, select_box picks the
// first (default), the last, or the best against the ground truth.
//
// Canonical text form (prompts, SFT targets): four values with exactly two decimals,
// "[0.61, 0.10, 0.77, 0.54]" (format_box). The parser reads the authors' "[0.61, 0.1, ...]" too.
//
// Model families write boxes in different units (BoxUnits): LLaVA-1.5 normalised, Qwen2.5-VL in
// absolute pixels of the image as its processor resized it ({"bbox_2d": [243, 40, 308, 216]}),
// Qwen2-VL on 0-1000. The ground truth of a dataset stays normalised (read by the rule above);
// a family's answers are read in its units (BoxParseOptions::units, config reward.box_format)
// and its SFT targets written in them (format_box_in). A box read in the wrong units lands in
// the wrong place or out of range: the most common silent failure of grounding rewards.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace perpo {

/// A box in normalised image coordinates; x1 <= x2 and y1 <= y2 once parsed.
struct Box {
  double x1 = 0, y1 = 0, x2 = 0, y2 = 0;

  double width() const { return x2 - x1; }
  double height() const { return y2 - y1; }
  double area() const { return width() * height(); }
  bool operator==(const Box&) const = default;
};

/// What the parser found for one box-like span of text.
enum class BoxNote {
  kOk,          // a usable box
  kMalformed,   // looked like a box but was not: wrong number of values, e.g. "[0.1, 0.2, 0.3]"
  kNonFinite,   // a value was NaN or infinite (or too large for a double)
  kOutOfRange,  // a value lies outside the image (or pixels without a known image size)
  kDegenerate,  // zero area: zero width or height, or too small for a double ([0, 0, 1e-200,
                // 1e-200])
};

/// Short stable name of a note: "ok", "malformed_box", "non_finite_box", "out_of_range_box",
/// "degenerate_box". These are the notes that rewards report and `perpo score` counts.
const char* box_note_name(BoxNote note);

/// How the box was written.
enum class BoxFormat {
  kBracketList,  // [x1, y1, x2, y2]
  kCornerPairs,  // (x1,y1),(x2,y2)
  kScaled1000,   // <|box_start|>(x1,y1),(x2,y2)<|box_end|> or <box>...</box>, 0-1000
};

/// One box-like span found in a text, in order of appearance.
struct BoxCandidate {
  Box box;  // normalised; meaningful only when note == kOk
  BoxNote note = BoxNote::kOk;
  BoxFormat format = BoxFormat::kBracketList;
  std::size_t offset = 0;  // byte offset of the span's first character
  bool corners_swapped = false;
};

/// The units of plain boxes ("[a, b, c, d]", corner pairs); the tagged 0-1000 forms
/// (<|box_start|>, <box>) keep their own scale.
enum class BoxUnits {
  kInfer,       // all four values in [0, 1]: normalised; else pixels (the rule above)
  kNormalized,  // fractions of the image (LLaVA-1.5); a value above 1 is out of range
  kPixels,      // pixels of image_width x image_height (Qwen2.5-VL: of its resized image)
  kScale1000,   // 0-1000 of the image (Qwen2-VL)
};

/// "infer" | "normalized" | "pixels" | "scale_1000" -> BoxUnits; throws perpo::Error (input)
/// naming the value otherwise.
BoxUnits parse_box_units(std::string_view name);
/// The name parse_box_units reads.
const char* box_units_name(BoxUnits units);

struct BoxParseOptions {
  double image_width = 0;   // pixels, e.g. 640; 0 = unknown (pixel boxes are then out of range)
  double image_height = 0;  // pixels, e.g. 480
  BoxUnits units = BoxUnits::kInfer;
};

/// `options` for reading a ground truth: the dataset's boxes are normalised (or pixels of the
/// image size, by the rule), whatever units the model's answers use.
inline BoxParseOptions truth_parse_options(BoxParseOptions options) {
  options.units = BoxUnits::kInfer;
  return options;
}

/// Every box-like span in `text`, in order. Never throws; runs in time linear in the text length.
std::vector<BoxCandidate> parse_boxes(std::string_view text, const BoxParseOptions& options = {});

/// Which of several boxes an answer is scored by.
enum class BoxSelect { kFirst, kLast, kBest };

/// "first" | "last" | "best" -> BoxSelect; throws perpo::Error (input) naming the value otherwise.
BoxSelect parse_box_select(std::string_view name);

/// The candidate an answer is scored by, or nullptr when there is none. Spans with four values
/// (usable or not) take precedence over malformed spans, which only serve as a diagnosis:
/// "see [1]: [0.1, 0.2, 0.3, 0.4]" is scored by its box. kFirst / kLast pick by position; kBest
/// picks the usable box with the highest IoU against `truth` (first / kFirst without a truth).
const BoxCandidate* select_box(const std::vector<BoxCandidate>& candidates, BoxSelect select,
                               const Box* truth = nullptr);

/// Canonical text of a box: "[0.61, 0.10, 0.77, 0.54]" (`decimals` digits after the point,
/// halves rounded away from zero: 0.125 -> "0.13").
std::string format_box(const Box& box, int decimals = 2);

/// A normalised box as a model of `units` writes it: kInfer / kNormalized format_box(box);
/// kPixels {"bbox_2d": [243, 40, 308, 216]} (corners times image_width / image_height, rounded
/// to whole pixels; throws perpo::Error (input) when the size is not positive); kScale1000
/// <|box_start|>(610,100),(770,540)<|box_end|> (rounded). Parsed back by parse_boxes with the
/// same units, the box moves by at most half a unit.
std::string format_box_in(const Box& box, BoxUnits units, double image_width = 0,
                          double image_height = 0);

/// Intersection over union, in [0, 1]. 0 when the union has no area (e.g. two degenerate boxes).
double iou(const Box& a, const Box& b);

/// Generalised IoU (Rezatofighi et al. 2019): IoU - (|C| - |A u B|) / |C|, C the smallest box
/// enclosing both; in [-1, 1]. Returns 0 when the enclosing box has no area.
double giou(const Box& a, const Box& b);

}  // namespace perpo
