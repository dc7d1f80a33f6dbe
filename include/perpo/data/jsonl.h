// Reading records from files, with errors that name the file and line of a bad record.
//
//   perpo::ReadOptions options = perpo::ReadOptions::from(config.data);   // on_bad_record
//   perpo::ReadReport report;
//   auto lists = perpo::read_preference_lists("lists.jsonl", options, &report);
//   // report.skipped bad records were left out (on_bad_record: skip); each one is logged
//
// Files are read whole and once (core/input_file.h): regular files, FIFOs and pipes; devices and
// folders are refused. Bad records: invalid JSON, JSON nested deeper than max_json_depth, a line
// longer than max_line_bytes, a missing field, a field of the wrong type, an image that does not
// exist or is not an image, answers / rewards / ref_logps of different lengths, fewer than 2
// answers. With on_bad_record "error" the first one throws perpo::Error (input),
// "lists.jsonl:7: field \"rewards\" has 3 entries but \"answers\" has 4"; with "skip" it is
// counted in the report and logged as a warning. Blank lines are not records.
//
// The authors' format (one JSON list of {image_id, image_path, question, answer, answers_gen,
// iou_scores}) is read by read_authors_lists(); its items are located by the line they start on.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "perpo/config/config.h"
#include "perpo/data/records.h"

namespace perpo {

/// How much is checked about each record's image while reading.
enum class ImageCheck {
  kNone,       // nothing (the image may be missing)
  kSignature,  // the file exists and starts like a PNG/JPEG/BMP/GIF/PNM image (cheap, default)
  kDecode,     // the file decodes (slow: reads every image)
};

struct ReadOptions {
  bool skip_bad_records = false;  // data.on_bad_record == "skip"
  ImageCheck image_check = ImageCheck::kSignature;
  bool require_rewards = true;       // lists: rewards must be present
  bool require_ground_truth = true;  // dataset records: ground_truth must be present
  bool require_prompt = true;        // "image" and "prompt" must be present (scoring needs
                                     // only "answers" and "ground_truth")
  std::size_t max_line_bytes = std::size_t{16} << 20;  // a longer JSONL line is a bad record
  int max_json_depth = 64;  // deeper nesting is a bad record (deep JSON overflows the stack)

  static ReadOptions from(const DataConfig& config);
};

/// What a read saw. Messages of skipped records are kept (the first 100) for the caller's report.
struct ReadReport {
  std::size_t records = 0;  // records returned
  std::size_t skipped = 0;  // bad records left out (on_bad_record: skip)
  std::vector<std::string> skip_messages;
};

/// Dataset records (JSONL). Throws perpo::Error (input) for an unreadable file or, unless
/// skipping, the first bad record.
std::vector<DatasetRecord> read_dataset(const std::filesystem::path& path,
                                        const ReadOptions& options, ReadReport* report = nullptr);

/// Preference lists (JSONL, see records.h).
std::vector<PreferenceList> read_preference_lists(const std::filesystem::path& path,
                                                  const ReadOptions& options,
                                                  ReadReport* report = nullptr);

/// Preference lists from the authors' JSON list: image_id -> id, image_path -> image,
/// question -> prompt (a leading "<image>\n" removed), answer -> ground_truth,
/// answers_gen -> answers, iou_scores -> rewards; task "grounding".
std::vector<PreferenceList> read_authors_lists(const std::filesystem::path& path,
                                               const ReadOptions& options,
                                               ReadReport* report = nullptr);

/// "perpo" (JSONL) or "authors" (a JSON list): by `format` unless it is "auto", which looks at the
/// file's first non-blank character ('[' = authors). A file that is not a regular file (a pipe)
/// cannot be looked at without consuming it: with "auto" that is an error (use read_lists).
std::string detect_list_format(const std::filesystem::path& path, const std::string& format);
/// The same on a file's text.
std::string detect_list_format_of_text(std::string_view text, const std::string& format);

/// read_preference_lists or read_authors_lists, as detect_list_format says. Reads the file once,
/// so a pipe works too (`--input <(zcat lists.jsonl.gz)`).
std::vector<PreferenceList> read_lists(const std::filesystem::path& path, const std::string& format,
                                       const ReadOptions& options, ReadReport* report = nullptr);

/// Checks one image as `check` asks; throws perpo::Error (input) "<source>: image <path> ...".
void check_image(const std::filesystem::path& image, const RecordSource& source, ImageCheck check);

}  // namespace perpo
