// Synthetic datasets on disk: `perpo data synth` and the demo's data stage.
//
//   perpo::SynthOptions options;
//   options.task = "grounding";   // or "ocr"
//   options.count = 1000;
//   options.seed = 1;
//   perpo::SynthSummary done = perpo::write_synth_dataset("data/grounding-train", options);
//   // data/grounding-train/records.jsonl  one dataset record per line (interfaces.md)
//   // data/grounding-train/images/grounding-000000.png ...
//
// Records are ordinary dataset records, so every command reads them:
//   {"id": "grounding-000000", "task": "grounding", "image": "images/grounding-000000.png",
//    "prompt": "Please provide the bounding box coordinate of the region this sentence describes:
//    the small red circle", "ground_truth": "[0.21, 0.40, 0.44, 0.63]"}
//   {"id": "ocr-000000", "task": "ocr", "image": "images/ocr-000000.png",
//    "prompt": "What text is written in the image?", "ground_truth": "red fox"}
//
// Deterministic: record i depends only on (seed, task, i) (synth/random.h), and the files are
// byte-identical for the same options. Use `first_index` to draw a disjoint range for an eval set
// under the same seed. The output folder follows core/output_paths.h: new, empty or written by
// perpo before (its marker file), else refused unless `force`; perpo never deletes anything in
// it, it only writes images/<id>.png, synth.json (the options), the marker and records.jsonl
// (atomically, last).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perpo/data/records.h"
#include "perpo/image/image.h"

namespace perpo {

class Font;

struct SynthOptions {
  std::string task = "grounding";  // grounding | ocr
  int count = 100;                 // records to write, e.g. 1000
  std::uint64_t seed = 1;          // e.g. 1
  std::uint64_t first_index = 0;   // records are numbered first_index, first_index + 1, ...
  int image_size = 48;             // image side in pixels, e.g. 48
  double noise = 3.0;              // pixel noise amplitude (8-bit levels); 0 = none
  int max_shapes = 5;              // grounding: 1 .. max_shapes shapes per image, e.g. 5
  int max_words = 2;               // ocr: 1 .. max_words words per line, e.g. 2
  int lexicon = 0;                 // ocr: words drawn from this many (ocr_lexicon); 0 = all
  double min_text_height = 0.26;   // ocr: font height in [min, max] x image side
  double max_text_height = 0.36;
  double inverted = 0.3;       // ocr: share of lines drawn light on dark
  std::filesystem::path font;  // OCR font; empty = DejaVu Sans (fonts-dejavu-core)
  bool force = false;          // write into a folder perpo did not write (files of the
                               // same name are replaced; nothing else is touched), or over a
                               // dataset written with other options
  bool replace_own = false;    // replace a dataset perpo wrote with other options without
                               // force (the demo's own data folders)
};

/// The built-in synthetic tasks: "grounding", "ocr".
const std::vector<std::string>& synth_task_names();

/// Checks the options; throws perpo::Error (input) naming the bad one.
void validate_synth_options(const SynthOptions& options);

/// Record `index` of the task and its image (nothing is written). `font` is needed for "ocr".
/// The record's `image` is "images/<id>.png" and `image_path` is empty.
DatasetRecord make_synth_record(const SynthOptions& options, std::uint64_t index, const Font* font,
                                RgbImage* image);

/// The options as JSON, written to <out>/synth.json beside the records (provenance; the demo
/// reuses a folder whose synth.json equals what it would write).
nlohmann::json synth_options_json(const SynthOptions& options);

struct SynthSummary {
  std::filesystem::path records_file;  // <out>/records.jsonl
  std::size_t records = 0;
  std::size_t image_bytes = 0;  // PNG bytes written
  double seconds = 0;
};

/// Writes `options.count` records and their PNG images into `out_dir` (see the file comment).
SynthSummary write_synth_dataset(const std::filesystem::path& out_dir, const SynthOptions& options);

}  // namespace perpo
