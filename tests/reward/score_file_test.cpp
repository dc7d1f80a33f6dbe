// score_list_file (the work behind `perpo score`): both input formats, output, summary, errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/reward/score_file.h"
#include "test_paths.h"

namespace perpo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path scratch(const std::string& name) {
  fs::path dir = fs::path(test::kScratchDir) / "reward";
  fs::create_directories(dir);
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
  EXPECT_EQ(records[0]["image_id"], 1);
  EXPECT_EQ(summary.answers, 2u);
}

TEST(ScoreFile, BadInputNamesFileAndLine) {
  fs::path input = scratch("bad.jsonl");
  fs::path output = scratch("bad_out.jsonl");
  fs::remove(output);
  write_file_atomic(input, "{\"answers\": [\"a\"], \"ground_truth\": \"a\"}\n{not json\n");
  try {
    score_list_file(input, output, {"exact_match", {}, ListInputFormat::kOurs});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error());
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2: not valid JSON"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(output));  // atomic: nothing half-written

  write_file_atomic(input, "{\"answers_gen\": [\"a\"], \"answer\": \"a\"}\n");
  try {
    score_list_file(input, output, {"exact_match", {}, ListInputFormat::kOurs});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:1: record has no 'answers' list"),
              std::string::npos)
        << e.what();
    EXPECT_NE(e.hint_text().find("--input-format authors"), std::string::npos);
  }
  write_file_atomic(input, "{\"answers\": [1], \"ground_truth\": \"a\"}\n");
  EXPECT_THROW(score_list_file(input, output, {"exact_match", {}, ListInputFormat::kOurs}), Error);
  EXPECT_THROW(score_list_file(scratch("missing.jsonl"), output, {}), Error);
  EXPECT_THROW(score_list_file(input, output, {"nope", {}, ListInputFormat::kOurs}), Error);
  EXPECT_EQ(parse_list_input_format("authors"), ListInputFormat::kAuthors);
  EXPECT_THROW(parse_list_input_format("csv"), Error);
}

}  // namespace
}  // namespace perpo
