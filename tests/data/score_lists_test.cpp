// score_list_file (the work behind `perpo score`): both input formats, output, summary, errors.
// The output is perpo's list format and reads back through the data readers.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/output_paths.h"
#include "perpo/data/jsonl.h"
#include "perpo/data/score_lists.h"
#include "test_paths.h"
#include "test_util.h"

namespace perpo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path scratch(const std::string& name) {
  fs::path dir = fs::path(test::kScratchDir) / "score_lists";
  fs::create_directories(dir);
  fs::remove(dir / name);  // outputs must not exist (an existing file needs force)
  return dir / name;
}

std::vector<json> read_jsonl(const fs::path& path) {
  std::vector<json> records;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) records.push_back(json::parse(line));
  return records;
}

TEST(ScoreFile, OursJsonl) {
  fs::path input = scratch("lists.jsonl");
  write_file_atomic(
      input,
      R"({"id": "a", "ground_truth": "[0.61, 0.1, 0.77, 0.54]", "answers": ["[0.61, 0.17, 0.77, 0.53]", "[0.61, 0.1, 0.77, 0.54]", "no idea"]})"
      "\n\n"
      R"({"id": "b", "ground_truth": "[0, 0, 0.5, 0.5]", "answers": ["[0.25, 0.25, 0.75, 0.75]", "[0.1, 0.2]"]})"
      "\n");
  fs::path output = scratch("scored.jsonl");
  ScoreSummary summary = score_list_file(input, output, {"iou", {}, ListInputFormat::kAuto});
  auto records = read_jsonl(output);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["id"], "a");  // the record is kept as it was
  // IoUs: 9/11 (see box_geometry_test), 1, 0 (no box); 1/7, 0 (malformed)
  EXPECT_NEAR(records[0]["rewards"][0].get<double>(), 9.0 / 11, 1e-12);
  EXPECT_EQ(records[0]["rewards"][1].get<double>(), 1.0);
  EXPECT_EQ(records[0]["reward_notes"], json({"ok", "ok", "no_box"}));
  EXPECT_NEAR(records[1]["rewards"][0].get<double>(), 1.0 / 7, 1e-12);
  EXPECT_EQ(records[1]["reward_notes"][1], "malformed_box");

  EXPECT_EQ(summary.records, 2u);
  EXPECT_EQ(summary.answers, 5u);
  // mean = (9/11 + 1 + 0 + 1/7 + 0) / 5
  EXPECT_NEAR(summary.mean_reward(), (9.0 / 11 + 1 + 1.0 / 7) / 5, 1e-12);
  // Histogram: 0, 0 -> bin 0 (with 0 from no_box); 1/7 ~ 0.14 -> bin 1; 9/11 ~ 0.82 -> bin 8;
  // 1.0 -> bin 9.
  EXPECT_EQ(summary.histogram[0], 2u);
  EXPECT_EQ(summary.histogram[1], 1u);
  EXPECT_EQ(summary.histogram[8], 1u);
  EXPECT_EQ(summary.histogram[9], 1u);
  EXPECT_EQ(summary.notes.at("ok"), 3u);
  EXPECT_EQ(summary.notes.at("no_box"), 1u);
  EXPECT_EQ(summary.notes.at("malformed_box"), 1u);
  std::string text = summary.to_text();
  EXPECT_NE(text.find("scored 5 answers in 2 records with reward 'iou'"), std::string::npos);
  EXPECT_NE(text.find("malformed_box 1"), std::string::npos) << text;
}

TEST(ScoreFile, AuthorsJsonListIsDetected) {
  fs::path input = scratch("authors.json");
  write_file_atomic(input, R"([
    {"image_id": 1, "image_path": "x.jpg", "question": "q", "answer": "hello world",
     "answers_gen": ["hello world", "hello"], "iou_scores": [1.0, 0.5]}
  ])");
  fs::path output = scratch("authors_scored.jsonl");
  ScoreFileOptions options{"ocr_edit", {}, ListInputFormat::kAuto};
  ScoreSummary summary = score_list_file(input, output, options);
  auto records = read_jsonl(output);
  ASSERT_EQ(records.size(), 1u);
  // "hello" vs "hello world": 6 deletions / 11 -> 1 - 6/11 = 5/11
  EXPECT_EQ(records[0]["rewards"][0].get<double>(), 1.0);
  EXPECT_NEAR(records[0]["rewards"][1].get<double>(), 5.0 / 11, 1e-12);
  EXPECT_EQ(records[0]["id"], "1");  // written as a perpo list, not as the authors' item
  EXPECT_EQ(records[0]["prompt"], "q");
  EXPECT_FALSE(records[0].contains("iou_scores"));
  EXPECT_EQ(summary.answers, 2u);
}

TEST(ScoreFile, BadInputNamesFileAndLine) {
  fs::path input = scratch("bad.jsonl");
  fs::path output = scratch("bad_out.jsonl");
  fs::remove(output);
  write_file_atomic(input, "{\"answers\": [\"a\", \"b\"], \"ground_truth\": \"a\"}\n{not json\n");
  try {
    score_list_file(input, output, {"exact_match", {}, ListInputFormat::kOurs});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error());
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2: not valid JSON"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(output));  // atomic: nothing half-written

  write_file_atomic(input, "{\"answers_gen\": [\"a\", \"b\"], \"answer\": \"a\"}\n");
  EXPECT_NE(test::error_of([&] {
              score_list_file(input, output, {"exact_match", {}, ListInputFormat::kOurs});
            }).find("bad.jsonl:1: field \"answers\" is missing"),
            std::string::npos);
  write_file_atomic(input, "{\"answers\": [1, \"b\"], \"ground_truth\": \"a\"}\n");
  EXPECT_THROW(score_list_file(input, output, {"exact_match", {}, ListInputFormat::kOurs}), Error);
  EXPECT_THROW(score_list_file(scratch("missing.jsonl"), output, {}), Error);
  EXPECT_THROW(score_list_file(input, output, {"nope", {}, ListInputFormat::kOurs}), Error);
  EXPECT_EQ(parse_list_input_format("authors"), ListInputFormat::kAuthors);
  EXPECT_THROW(parse_list_input_format("csv"), Error);
}

fs::path data_fixtures() { return fs::path(test::kTestsDir) / "fixtures" / "data"; }

TEST(ScoreFile, AuthorsJsonOutputReadsBackThroughTheListReader) {
  // Before: the output was the authors' items plus rewards, which no perpo reader accepted.
  fs::path dir = test::fresh_scratch_dir("score_lists", "authors_round_trip");
  fs::path output = dir / "scored.jsonl";
  ScoreSummary summary = score_list_file(data_fixtures() / "authors.json", output,
                                         {"iou", {}, ListInputFormat::kAuto});
  EXPECT_EQ(summary.records, 2u);
  // Default ReadOptions: rewards required, images checked (the relative image path was rewritten
  // against the output's folder, so it still finds the fixture image).
  const std::vector<PreferenceList> lists = read_preference_lists(output, ReadOptions{});
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0].record.id, "581857");
  EXPECT_EQ(lists[0].rewards.size(), lists[0].answers.size());
  EXPECT_EQ(lists[0].rewards[0], 1.0);  // the first answer is the truth itself
  EXPECT_EQ(fs::canonical(lists[0].record.image_path),
            fs::canonical(data_fixtures() / "images" / "gradient_8x6.png"));
  EXPECT_EQ(lists[0].record.extra["reward_notes"][0], "ok");
  // Scoring the scored file again gives the same output (what one command writes, it reads).
  score_list_file(output, dir / "again.jsonl", {"iou", {}, ListInputFormat::kAuto});
  EXPECT_EQ(read_file(dir / "again.jsonl"), read_file(output));
}

TEST(ScoreFile, BadListsAreRejectedNamingTheLine) {
  fs::path dir = test::fresh_scratch_dir("score_lists", "bad_lists");
  struct Case {
    std::string line;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {R"({"answers": ["a"], "ground_truth": "a"})", "at least 2 answers, got 1"},
      {R"({"answers": [], "ground_truth": "a"})", "at least 2 answers, got 0"},
      {R"({"answers": ["a", "b"], "ground_truth": "a", "ref_logps": [-1.0]})",
       "field \"ref_logps\" has 1 entries but \"answers\" has 2"},
      {R"({"answers": ["a", "b"], "ground_truth": "a", "image_width": "640"})",
       "field \"image_width\" must be a positive number of pixels, got \"640\""},
      {R"({"answers": ["a", "b"], "ground_truth": "a", "image_width": -100})",
       "must be a positive number of pixels, got -100"},
      {R"({"answers": ["a", "b"], "ground_truth": "a", "image_height": 0})",
       "field \"image_height\" must be a positive number of pixels, got 0"},
      {R"({"answers": ["a", "b"]})", "no ground truth"},
      {R"({"answers": ["a", "b"], "ground_truth": ""})", "no ground truth"},
      {std::string(100, '[') + std::string(100, ']'), "nested deeper than 64 levels"},
  };
  for (const Case& c : cases) {
    write_file_atomic(dir / "in.jsonl", "\n" + c.line + "\n");
    std::string message = test::error_of([&] {
      score_list_file(dir / "in.jsonl", dir / "out.jsonl",
                      {"exact_match", {}, ListInputFormat::kOurs});
    });
    EXPECT_NE(message.find("in.jsonl:2: "), std::string::npos) << c.line << " -> " << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << c.line << " -> " << message;
    EXPECT_FALSE(fs::exists(dir / "out.jsonl")) << c.line;
  }
}

TEST(ScoreFile, DeepJsonIsRefusedNotACrash) {
  // ~100k levels used to overflow the stack while the record was written back.
  fs::path dir = test::fresh_scratch_dir("score_lists", "deep");
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  write_file_atomic(dir / "deep.jsonl",
                    R"({"answers": ["a", "b"], "ground_truth": "a", "x": )" + deep + "}\n");
  EXPECT_NE(test::error_of([&] {
              score_list_file(dir / "deep.jsonl", dir / "out.jsonl",
                              {"exact_match", {}, ListInputFormat::kAuto});
            }).find("deep.jsonl:1: JSON nested deeper than"),
            std::string::npos);
  write_file_atomic(dir / "deep.json", "[" + deep + "]");
  EXPECT_NE(test::error_of([&] {
              score_list_file(dir / "deep.json", dir / "out.jsonl",
                              {"exact_match", {}, ListInputFormat::kAuto});
            }).find("nested deeper than"),
            std::string::npos);
}

TEST(ScoreFile, RecordImageSizeNormalisesPixelBoxes) {
  fs::path dir = test::fresh_scratch_dir("score_lists", "pixels");
  write_file_atomic(
      dir / "in.jsonl",
      R"({"answers": ["[64, 48, 320, 240]", "[0, 0, 1, 1]"], )"
      R"("ground_truth": "[0.1, 0.1, 0.5, 0.5]", "image_width": 640, "image_height": 480})"
      "\n");
  score_list_file(dir / "in.jsonl", dir / "out.jsonl", {"iou", {}, ListInputFormat::kAuto});
  auto records = read_jsonl(dir / "out.jsonl");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_NEAR(records[0]["rewards"][0].get<double>(), 1.0, 1e-12);  // 64/640 = 0.1, ...
}

TEST(ScoreFile, OutputMayNotBeTheInput) {
  fs::path dir = test::fresh_scratch_dir("score_lists", "same");
  const std::string text = R"({"answers": ["a", "b"], "ground_truth": "a"})"
                           "\n";
  write_file_atomic(dir / "in.jsonl", text);
  EXPECT_NE(test::error_of([&] {
              score_list_file(dir / "in.jsonl", dir / "in.jsonl",
                              {"exact_match", {}, ListInputFormat::kAuto});
            }).find("is the input"),
            std::string::npos);
  EXPECT_EQ(read_file(dir / "in.jsonl"), text);
}

}  // namespace
}  // namespace perpo
