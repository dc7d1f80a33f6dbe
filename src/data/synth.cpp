// Synthetic datasets on disk (see synth.h).
#include "perpo/data/synth.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/progress.h"
#include "perpo/core/strings.h"
#include "perpo/data/synth_font.h"
#include "perpo/data/synth_grounding.h"
#include "perpo/data/synth_ocr.h"
#include "perpo/data/synth_random.h"
#include "perpo/data/synth_raster.h"

namespace perpo {

namespace fs = std::filesystem;

const std::vector<std::string>& synth_task_names() {
  static const std::vector<std::string> names = {"grounding", "ocr"};
  return names;
}

void validate_synth_options(const SynthOptions& options) {
  bool known = false;
  for (const auto& name : synth_task_names()) known = known || name == options.task;
  if (!known) {
    throw input_error("unknown synthetic task '", options.task, "'")
        .hint("use one of: " + join(synth_task_names(), ", "));
  }
  PERPO_CHECK_INPUT(options.count >= 1, "the number of synthetic records must be >= 1, got ",
                    options.count);
  PERPO_CHECK_INPUT(options.image_size >= 16 && options.image_size <= 1024,
                    "synthetic image size must be in [16, 1024] pixels, got ", options.image_size);
  PERPO_CHECK_INPUT(options.noise >= 0 && options.noise <= 64,
                    "synthetic pixel noise must be in [0, 64] levels, got ", options.noise);
}

DatasetRecord make_synth_record(const SynthOptions& options, std::uint64_t index, const Font* font,
                                RgbImage* image) {
  char id[64];
  std::snprintf(id, sizeof id, "%s-%06llu", options.task.c_str(),
                static_cast<unsigned long long>(index));
  DatasetRecord record;
  record.id = id;
  record.task = options.task;
  record.image = "images/" + record.id + ".png";
  SynthRng rng = SynthRng::for_record(options.seed, options.task, index);
  if (options.task == "grounding") {
    GroundingOptions grounding;
    grounding.image_size = options.image_size;
    grounding.noise = options.noise;
    GroundingItem item = make_grounding_item(rng, grounding);
    record.prompt = std::move(item.prompt);
    record.ground_truth = std::move(item.ground_truth);
    if (image) *image = std::move(item.image);
  } else if (options.task == "ocr") {
    PERPO_CHECK(font != nullptr, "synthetic OCR records need a font");
    OcrOptions ocr;
    ocr.image_size = options.image_size;
    ocr.noise = options.noise;
    OcrItem item = make_ocr_item(rng, *font, ocr);
    record.prompt = std::move(item.prompt);
    record.ground_truth = std::move(item.text);
    if (image) *image = std::move(item.image);
  } else {
    validate_synth_options(options);  // throws: unknown task
  }
  return record;
}

void prepare_synth_output_dir(const fs::path& out_dir, bool force) {
  std::error_code ec;
  if (fs::exists(out_dir, ec)) {
    PERPO_CHECK_INPUT(fs::is_directory(out_dir, ec), "output ", out_dir.string(),
                      " exists and is not a folder");
    if (!force && !fs::is_empty(out_dir, ec)) {
      throw input_error("output folder ", out_dir.string(), " is not empty")
          .hint(
              "choose a new folder, or pass --force to write into it (files of the same name "
              "are replaced, nothing else is touched)");
    }
  }
  fs::create_directories(out_dir / "images", ec);
  PERPO_CHECK(!ec, "cannot create ", (out_dir / "images").string(), ": ", ec.message());
}

SynthSummary write_synth_dataset(const fs::path& out_dir, const SynthOptions& options) {
  validate_synth_options(options);
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Font> font;
  if (options.task == "ocr") {
    font = std::make_unique<Font>(options.font.empty() ? default_font_path() : options.font);
  }
  prepare_synth_output_dir(out_dir, options.force);

  SynthSummary summary;
  summary.records_file = out_dir / "records.jsonl";
  std::ostringstream lines;
  Progress progress(options.count, "synth " + options.task, "records");
  for (int i = 0; i < options.count; ++i) {
    RgbImage image;
    const DatasetRecord record =
        make_synth_record(options, options.first_index + i, font.get(), &image);
    const std::string png = encode_png(image);
    // Each image is complete or absent (temporary file + rename); records.jsonl, written last,
    // is what makes the set usable.
    write_file_atomic(out_dir / record.image, png);
    summary.image_bytes += png.size();
    lines << to_json(record).dump() << '\n';
    progress.advance();
  }
  progress.finish();
  write_file_atomic(summary.records_file, lines.str());
  summary.records = static_cast<std::size_t>(options.count);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace perpo
