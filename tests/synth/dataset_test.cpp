// Synthetic datasets on disk: byte-identical for one seed, read back by data's own readers, and
// the output folder rules (a non-empty folder is refused without force, nothing is deleted).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "perpo/core/atomic_file.h"
#include "perpo/data/jsonl.h"
#include "perpo/image/image.h"
#include "perpo/reward/box.h"
#include "perpo/synth/font.h"
#include "perpo/synth/ocr.h"
#include "perpo/synth/synth.h"
#include "test_util.h"

namespace perpo {
namespace {

namespace fs = std::filesystem;

SynthOptions options_for(const std::string& task, int count, std::uint64_t seed) {
  SynthOptions options;
  options.task = task;
  options.count = count;
  options.seed = seed;
  return options;
}

// Every file under `dir`, relative path -> bytes.
std::map<std::string, std::string> files_of(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) {
      files[fs::relative(entry.path(), dir).string()] = read_file(entry.path());
    }
  }
  return files;
}

TEST(SynthDataset, SameSeedGivesByteIdenticalFiles) {
  for (const std::string task : {"grounding", "ocr"}) {
    const fs::path a = test::fresh_scratch_dir("synth", task + "-a");
    const fs::path b = test::fresh_scratch_dir("synth", task + "-b");
    const fs::path c = test::fresh_scratch_dir("synth", task + "-c");
    write_synth_dataset(a, options_for(task, 12, 9));
    write_synth_dataset(b, options_for(task, 12, 9));
    write_synth_dataset(c, options_for(task, 12, 10));
    const auto files_a = files_of(a), files_b = files_of(b), files_c = files_of(c);
    EXPECT_EQ(files_a.size(), 15u);  // records.jsonl, synth.json, marker, 12 images
    EXPECT_EQ(files_a, files_b) << task;
    EXPECT_NE(files_a.at("records.jsonl"), files_c.at("records.jsonl")) << task;
    EXPECT_NE(files_a.at("images/" + task + "-000003.png"),
              files_c.at("images/" + task + "-000003.png"));
  }
}

TEST(SynthDataset, ReadBackByTheDatasetReader) {
  const fs::path dir = test::fresh_scratch_dir("synth", "read-back");
  const SynthSummary grounding = write_synth_dataset(dir / "g", options_for("grounding", 20, 1));
  const SynthSummary ocr = write_synth_dataset(dir / "o", options_for("ocr", 20, 1));
  EXPECT_EQ(grounding.records, 20u);
  EXPECT_EQ(grounding.records_file, dir / "g" / "records.jsonl");
  ReadOptions read;
  read.image_check = ImageCheck::kDecode;
  ReadReport report;
  const auto records = read_dataset(grounding.records_file, read, &report);
  ASSERT_EQ(records.size(), 20u);
  EXPECT_EQ(report.skipped, 0u);
  for (const DatasetRecord& r : records) {
    EXPECT_EQ(r.task, "grounding");
    EXPECT_EQ(r.image, "images/" + r.id + ".png");
    EXPECT_TRUE(
        r.prompt.starts_with("Please provide the bounding box coordinate of the region "
                             "this sentence describes: the "))
        << r.prompt;
    const auto boxes = parse_boxes(r.ground_truth);
    ASSERT_EQ(boxes.size(), 1u) << r.ground_truth;
    EXPECT_EQ(boxes[0].note, BoxNote::kOk) << r.ground_truth;
    const RgbImage image = load_image(r.image_path);
    EXPECT_EQ(image.width, 48);
    EXPECT_EQ(image.height, 48);
  }
  EXPECT_EQ(records[0].id, "grounding-000000");
  const auto provenance = nlohmann::json::parse(read_file(dir / "g" / "synth.json"));
  EXPECT_EQ(provenance, synth_options_json(options_for("grounding", 20, 1)));
  EXPECT_EQ(provenance["seed"], 1);
  EXPECT_EQ(provenance["count"], 20);
  const auto lines = read_dataset(ocr.records_file, read);
  ASSERT_EQ(lines.size(), 20u);
  for (const DatasetRecord& r : lines) {
    EXPECT_EQ(r.task, "ocr");
    EXPECT_EQ(r.prompt, "What text is written in the image?");
    EXPECT_FALSE(r.ground_truth.empty());
  }
}

TEST(SynthDataset, FirstIndexDrawsADisjointRangeOfTheSameStream) {
  SynthOptions options = options_for("grounding", 1, 4);
  RgbImage image_5, image_5_again;
  const DatasetRecord r5 = make_synth_record(options, 5, nullptr, &image_5);
  options.first_index = 5;
  const fs::path dir = test::fresh_scratch_dir("synth", "first-index");
  write_synth_dataset(dir, options);
  const auto records = read_dataset(dir / "records.jsonl", ReadOptions{});
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].id, "grounding-000005");
  EXPECT_EQ(records[0].prompt, r5.prompt);
  EXPECT_EQ(records[0].ground_truth, r5.ground_truth);
  EXPECT_EQ(load_image(records[0].image_path).pixels, image_5.pixels);
}

TEST(SynthDataset, RefusesANonEmptyFolderUnlessForcedAndDeletesNothing) {
  const fs::path dir = test::fresh_scratch_dir("synth", "refuse");
  write_file_atomic(dir / "notes.txt", "mine");
  const std::string error =
      test::error_of([&] { write_synth_dataset(dir, options_for("ocr", 2, 1)); });
  EXPECT_NE(error.find("perpo did not write"), std::string::npos) << error;
  EXPECT_NE(error.find("--force"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(dir / "records.jsonl"));
  // A dataset perpo wrote is written again with the same options (the same bytes); with other
  // options it is refused (it may be the input of lists and runs: issue 21), unless --force or
  // its owner says so (the demo's own folders).
  const fs::path own = test::fresh_scratch_dir("synth", "own");
  write_synth_dataset(own / "set", options_for("ocr", 2, 1));
  write_synth_dataset(own / "set", options_for("ocr", 2, 1));
  const std::string other =
      test::error_of([&] { write_synth_dataset(own / "set", options_for("ocr", 3, 1)); });
  EXPECT_NE(other.find("holds a dataset written with other options"), std::string::npos) << other;
  EXPECT_EQ(read_dataset(own / "set" / "records.jsonl", ReadOptions{}).size(), 2u);
  SynthOptions replace = options_for("ocr", 3, 1);
  replace.replace_own = true;
  write_synth_dataset(own / "set", replace);
  EXPECT_EQ(read_dataset(own / "set" / "records.jsonl", ReadOptions{}).size(), 3u);
  SynthOptions forced = options_for("ocr", 2, 1);
  forced.force = true;
  write_synth_dataset(dir, forced);
  EXPECT_EQ(read_file(dir / "notes.txt"), "mine");
  EXPECT_TRUE(fs::exists(dir / "records.jsonl"));
}

TEST(SynthDataset, BadOptionsAreInputErrors) {
  EXPECT_NE(test::error_of([] {
              validate_synth_options(options_for("ocrr", 2, 1));
            }).find("unknown synthetic task 'ocrr'"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { validate_synth_options(options_for("ocr", 0, 1)); }).find(">= 1"),
            std::string::npos);
}

// Fraction of `records` grounding records of `options` whose image has ink (pixels unlike the
// corner's background) outside the ground-truth box by more than `slack` (normalised): 0 when
// every image holds only the target shape.
double share_with_ink_outside_truth(SynthOptions options, int records, double slack) {
  options.task = "grounding";
  options.noise = 0;
  int outside = 0;
  for (int i = 0; i < records; ++i) {
    RgbImage image;
    const DatasetRecord record = make_synth_record(options, i, nullptr, &image);
    const auto boxes = parse_boxes(record.ground_truth);
    EXPECT_EQ(boxes.size(), 1u) << record.ground_truth;
    const Box truth = boxes.front().box;
    const std::uint8_t* corner = image.pixels.data();
    bool ink_outside = false;
    for (int y = 0; y < image.height; ++y) {
      for (int x = 0; x < image.width; ++x) {
        const std::uint8_t* p = image.pixels.data() + (y * image.width + x) * 3;
        if (std::equal(p, p + 3, corner)) continue;
        const double cx = (x + 0.5) / image.width, cy = (y + 0.5) / image.height;
        ink_outside = ink_outside || cx < truth.x1 - slack || cx > truth.x2 + slack ||
                      cy < truth.y1 - slack || cy > truth.y2 + slack;
      }
    }
    outside += ink_outside ? 1 : 0;
  }
  return static_cast<double>(outside) / records;
}

TEST(SynthDataset, MaxShapesOneDrawsOnlyTheTarget) {
  SynthOptions options = options_for("grounding", 1, 5);
  options.max_shapes = 1;
  EXPECT_EQ(share_with_ink_outside_truth(options, 24, 0.03), 0.0);
  options.max_shapes = 5;  // the default: most images hold other shapes too
  EXPECT_GT(share_with_ink_outside_truth(options, 24, 0.03), 0.5);
  EXPECT_EQ(synth_options_json(options)["max_shapes"], 5);
  EXPECT_FALSE(synth_options_json(options_for("ocr", 1, 5)).contains("max_shapes"));
  for (int bad : {0, 9}) {
    options.max_shapes = bad;
    EXPECT_NE(test::error_of([&] { validate_synth_options(options); }).find("max_shapes"),
              std::string::npos);
  }
}

TEST(SynthDataset, MaxWordsBoundsTheWordsOfAnOcrLine) {
  const Font font(default_font_path());
  auto most_words = [&](const SynthOptions& options) {
    int most = 0;
    for (std::uint64_t i = 0; i < 40; ++i) {
      const std::string text = make_synth_record(options, i, &font, nullptr).ground_truth;
      most = std::max(most, 1 + static_cast<int>(std::count(text.begin(), text.end(), ' ')));
    }
    return most;
  };
  SynthOptions options = options_for("ocr", 1, 5);
  EXPECT_EQ(most_words(options), 2);  // the default: one or two words
  options.max_words = 1;
  EXPECT_EQ(most_words(options), 1);
  EXPECT_EQ(synth_options_json(options)["max_words"], 1);
  EXPECT_FALSE(synth_options_json(options_for("grounding", 1, 5)).contains("max_words"));
  for (int bad : {0, 9}) {
    options.max_words = bad;
    EXPECT_NE(test::error_of([&] { validate_synth_options(options); }).find("max_words"),
              std::string::npos);
  }
}

TEST(SynthDataset, OcrLexiconHeightsAndInversionAreCheckedAndRecorded) {
  const Font font(default_font_path());
  SynthOptions options = options_for("ocr", 1, 5);
  options.lexicon = 4;
  options.max_words = 1;
  std::set<std::string> texts;
  for (std::uint64_t i = 0; i < 40; ++i) {
    texts.insert(make_synth_record(options, i, &font, nullptr).ground_truth);
  }
  const std::vector<std::string> four = ocr_lexicon(4);
  EXPECT_EQ(texts, std::set<std::string>(four.begin(), four.end()));
  options.min_text_height = 0.4;
  options.max_text_height = 0.5;
  options.inverted = 0;
  const nlohmann::json json = synth_options_json(options);
  EXPECT_EQ(json["lexicon"], 4);
  EXPECT_EQ(json["min_text_height"], 0.4);
  EXPECT_EQ(json["max_text_height"], 0.5);
  EXPECT_EQ(json["inverted"], 0);
  EXPECT_FALSE(synth_options_json(options_for("grounding", 1, 5)).contains("lexicon"));
  // The defaults draw the same records as before these options existed: all 150 words.
  EXPECT_EQ(ocr_lexicon(options_for("ocr", 1, 5).lexicon).size(), ocr_words().size());
  const std::vector<std::pair<std::function<void(SynthOptions&)>, std::string>> bad = {
      {[](SynthOptions& o) { o.lexicon = 1; }, "lexicon must be 0 (all words) or in [2, "},
      {[](SynthOptions& o) { o.lexicon = 141; }, "lexicon"},
      {[](SynthOptions& o) { o.min_text_height = 0.05; }, "0.1 <= min <= max <= 0.9"},
      {[](SynthOptions& o) { o.max_text_height = 0.95; }, "0.1 <= min <= max <= 0.9"},
      {[](SynthOptions& o) {
         o.min_text_height = 0.5;
         o.max_text_height = 0.4;
       },
       "0.1 <= min <= max <= 0.9"},
      {[](SynthOptions& o) { o.inverted = 1.5; }, "inverted lines must be in [0, 1]"},
  };
  for (const auto& [change, message] : bad) {
    SynthOptions wrong = options_for("ocr", 1, 5);
    change(wrong);
    EXPECT_NE(test::error_of([&] { validate_synth_options(wrong); }).find(message),
              std::string::npos)
        << message;
  }
}

}  // namespace
}  // namespace perpo
