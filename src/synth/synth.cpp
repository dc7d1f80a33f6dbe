// Synthetic datasets on disk (see synth/synth.h).
#include "perpo/synth/synth.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/output_paths.h"
#include "perpo/core/progress.h"
#include "perpo/core/strings.h"
#include "perpo/synth/font.h"
#include "perpo/synth/grounding.h"
#include "perpo/synth/ocr.h"
#include "perpo/synth/random.h"
#include "perpo/synth/raster.h"

namespace perpo {

namespace fs = std::filesystem;

namespace {

// Complete or absent (temporary file + rename), without an fsync per image: one
// sync_file_system() covers them all before records.jsonl, written last, makes the set usable.
void write_image(const fs::path& path, const std::string& bytes) {
  fs::path temp = path;
  temp += ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(temp, ec);
      throw runtime_error("cannot write ", temp.string());
    }
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) {
    fs::remove(temp, ec);
    throw runtime_error("cannot rename ", temp.string(), " to ", path.string());
  }
}

void sync_file_system(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  PERPO_CHECK(fd >= 0, "cannot open ", dir.string(), ": ", std::strerror(errno));
  const int rc = ::syncfs(fd);
  const int saved = errno;
  ::close(fd);
  PERPO_CHECK(rc == 0, "cannot sync ", dir.string(), ": ", std::strerror(saved));
}

}  // namespace

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
  PERPO_CHECK_INPUT(options.max_shapes >= 1 && options.max_shapes <= 8,
                    "synthetic grounding shapes per image (max_shapes) must be in [1, 8], got ",
                    options.max_shapes);
  PERPO_CHECK_INPUT(options.max_words >= 1 && options.max_words <= 8,
                    "synthetic OCR words per line (max_words) must be in [1, 8], got ",
                    options.max_words);
  const int words = static_cast<int>(ocr_words().size());
  PERPO_CHECK_INPUT(options.lexicon == 0 || (options.lexicon >= 2 && options.lexicon <= words),
                    "synthetic OCR lexicon must be 0 (all words) or in [2, ", words, "], got ",
                    options.lexicon);
  PERPO_CHECK_INPUT(options.min_text_height >= 0.1 &&
                        options.min_text_height <= options.max_text_height &&
                        options.max_text_height <= 0.9,
                    "synthetic OCR text heights must satisfy 0.1 <= min <= max <= 0.9 (shares of "
                    "the image side), got ",
                    options.min_text_height, " and ", options.max_text_height);
  PERPO_CHECK_INPUT(options.inverted >= 0 && options.inverted <= 1,
                    "synthetic OCR share of inverted lines must be in [0, 1], got ",
                    options.inverted);
}

nlohmann::json synth_options_json(const SynthOptions& options) {
  nlohmann::json json;
  json["generator"] = "perpo data synth";
  json["task"] = options.task;
  json["count"] = options.count;
  json["seed"] = options.seed;
  json["first_index"] = options.first_index;
  json["image_size"] = options.image_size;
  json["noise"] = options.noise;
  if (options.task == "grounding") json["max_shapes"] = options.max_shapes;
  if (options.task == "ocr") {
    json["max_words"] = options.max_words;
    json["lexicon"] = options.lexicon;
    json["min_text_height"] = options.min_text_height;
    json["max_text_height"] = options.max_text_height;
    json["inverted"] = options.inverted;
  }
  json["font"] = options.task == "ocr"
                     ? (options.font.empty() ? default_font_path() : options.font).string()
                     : "";
  return json;
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
    grounding.max_shapes = options.max_shapes;
    GroundingItem item = make_grounding_item(rng, grounding);
    record.prompt = std::move(item.prompt);
    record.ground_truth = std::move(item.ground_truth);
    if (image) *image = std::move(item.image);
  } else if (options.task == "ocr") {
    PERPO_CHECK(font != nullptr, "synthetic OCR records need a font");
    OcrOptions ocr;
    ocr.image_size = options.image_size;
    ocr.noise = options.noise;
    ocr.max_words = options.max_words;
    ocr.lexicon = options.lexicon;
    ocr.min_height = options.min_text_height;
    ocr.max_height = options.max_text_height;
    ocr.inverted = options.inverted;
    OcrItem item = make_ocr_item(rng, *font, ocr);
    record.prompt = std::move(item.prompt);
    record.ground_truth = std::move(item.text);
    if (image) *image = std::move(item.image);
  } else {
    validate_synth_options(options);  // throws: unknown task
  }
  return record;
}

SynthSummary write_synth_dataset(const fs::path& out_dir, const SynthOptions& options) {
  validate_synth_options(options);
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Font> font;
  if (options.task == "ocr") {
    font = std::make_unique<Font>(options.font.empty() ? default_font_path() : options.font);
  }
  // The output-path rules: new, empty or perpo's own folder (or --force); never over an input.
  OutputPolicy policy{{}, options.force};
  policy.kind = OutputPolicy::kOutputKindDataset;  // reused by data synth only
  if (font) policy.inputs.push_back(font->path());
  check_output_dir(out_dir, policy);
  // A dataset already there is someone's input (lists, runs): it is written again only by the
  // same options (the same bytes), or with --force.
  std::error_code exists_error;
  const fs::path earlier_stamp = out_dir / "synth.json";
  if (!options.force && !options.replace_own &&
      fs::is_regular_file(out_dir / "records.jsonl", exists_error)) {
    nlohmann::json earlier;
    if (fs::is_regular_file(earlier_stamp, exists_error)) {
      earlier = nlohmann::json::parse(read_file(earlier_stamp), nullptr, false);
    }
    if (earlier != synth_options_json(options)) {
      throw input_error("output folder ", out_dir.string(),
                        " holds a dataset written with other options (", earlier_stamp.string(),
                        "); writing would replace its records and images")
          .hint("choose a new folder, or pass --force to replace it");
    }
  }
  OutputLock lock = prepare_output_dir(out_dir, policy);
  std::error_code ec;
  fs::create_directories(out_dir / "images", ec);
  PERPO_CHECK(!ec, "cannot create ", (out_dir / "images").string(), ": ", ec.message());

  SynthSummary summary;
  summary.records_file = out_dir / "records.jsonl";
  std::ostringstream lines;
  Progress progress(options.count, "synth " + options.task, "records");
  for (int i = 0; i < options.count; ++i) {
    RgbImage image;
    const DatasetRecord record =
        make_synth_record(options, options.first_index + i, font.get(), &image);
    const std::string png = encode_png(image);
    write_image(out_dir / record.image, png);
    summary.image_bytes += png.size();
    lines << to_json(record).dump() << '\n';
    progress.advance();
  }
  progress.finish();
  sync_file_system(out_dir);  // every image is on disk before records.jsonl names it
  write_file_atomic(out_dir / "synth.json", synth_options_json(options).dump(2) + "\n");
  write_file_atomic(summary.records_file, lines.str());
  summary.records = static_cast<std::size_t>(options.count);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace perpo
