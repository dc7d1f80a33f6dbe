// What perpo's readers return, written back with to_json (one record a line), reads back equal:
// the property fuzz/jsonl_reader.cpp and fuzz/authors_json.cpp check on arbitrary input. These are
// the cases the fuzzers found, as plain tests.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/data/jsonl.h"
#include "perpo/data/records.h"
#include "test_util.h"

namespace perpo {
namespace {
using ::testing::HasSubstr;

ReadOptions without_images() {
  ReadOptions options;
  options.image_check = ImageCheck::kNone;
  return options;
}

TEST(AuthorsFormat, FieldNamedLikePerposOwnIsRefused) {
  // The authors' "question" becomes perpo's "prompt"; an extra "prompt" field was kept in
  // `extra` and then silently dropped when the list was written as perpo JSONL.
  const auto dir = test::fresh_scratch_dir("data_round_trip", "clash");
  write_file_atomic(dir / "authors.json", R"([
  {"image_path": "a.png", "question": "q", "answers_gen": ["a", "b"], "iou_scores": [1, 0],
   "prompt": "another prompt"}
])");
  const std::string message =
      test::error_of([&] { read_authors_lists(dir / "authors.json", without_images()); });
  EXPECT_THAT(message, HasSubstr("authors.json:2: field \"prompt\" is not part of the authors' "
                                 "format and clashes with perpo's own \"prompt\""));
  ReadOptions skip = without_images();
  skip.skip_bad_records = true;
  ReadReport report;
  EXPECT_TRUE(read_authors_lists(dir / "authors.json", skip, &report).empty());
  EXPECT_EQ(report.skipped, 1u);
}

TEST(AuthorsFormat, ImportedListsWrittenAsJsonlReadBackEqual) {
  const auto dir = test::fresh_scratch_dir("data_round_trip", "authors");
  write_file_atomic(dir / "authors.json", R"([
  {"image_id": 7, "image_path": "a.png", "question": "<image>\nq", "answer": "[0, 0, 1, 1]",
   "answers_gen": ["a", "b"], "iou_scores": [0.25, 1e-300], "split": {"name": ["train", 1]}}
])");
  const auto lists = read_authors_lists(dir / "authors.json", without_images());
  ASSERT_EQ(lists.size(), 1u);
  write_file_atomic(dir / "lists.jsonl", to_json(lists[0]).dump() + "\n");
  const auto again = read_preference_lists(dir / "lists.jsonl", without_images());
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].record.id, "7");
  EXPECT_EQ(again[0].record.prompt, "q");
  EXPECT_EQ(again[0].record.extra, lists[0].record.extra);
  EXPECT_EQ(again[0].rewards, (std::vector<double>{0.25, 1e-300}));
}

TEST(JsonlReader, NumberTooLargeForADoubleIsBadInput) {
  // nlohmann throws out_of_range (not parse_error) for 1e400; it escaped the reader.
  const auto dir = test::fresh_scratch_dir("data_round_trip", "overflow");
  write_file_atomic(
      dir / "lists.jsonl",
      R"({"image": "a.png", "prompt": "p", "answers": ["a", "b"], "rewards": [1e400, 0]})"
      "\n");
  try {
    read_preference_lists(dir / "lists.jsonl", without_images());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error());
    EXPECT_THAT(e.what(), HasSubstr("lists.jsonl:1: not valid JSON"));
  }
}

TEST(JsonlReader, SampleTokenLogpsReadBackEqualAndAreChecked) {
  // Issue 25: one row of token log-probs per answer, kept by every writer (to_json) exactly.
  const auto dir = test::fresh_scratch_dir("data_round_trip", "token_logps");
  const std::string list =
      R"({"id": "a", "image": "a.png", "prompt": "q", "answers": ["x", "y"], "rewards": [1, 0], )";
  write_file_atomic(dir / "lists.jsonl",
                    list + R"("sample_token_logps": [[-0.125, -2.5e-7], [-3.0]]})" + "\n");
  const auto lists = read_preference_lists(dir / "lists.jsonl", without_images());
  ASSERT_EQ(lists.size(), 1u);
  EXPECT_EQ(lists[0].sample_token_logps,
            (std::vector<std::vector<double>>{{-0.125, -2.5e-7}, {-3.0}}));
  EXPECT_FALSE(lists[0].record.extra.contains("sample_token_logps"));  // a list field, not extra
  write_file_atomic(dir / "again.jsonl", to_json(lists[0]).dump() + "\n");
  EXPECT_EQ(read_preference_lists(dir / "again.jsonl", without_images())[0].sample_token_logps,
            lists[0].sample_token_logps);
  auto error_for = [&](const std::string& field) {
    write_file_atomic(dir / "bad.jsonl", list + field + "}\n");
    return test::error_of([&] { read_preference_lists(dir / "bad.jsonl", without_images()); });
  };
  EXPECT_THAT(error_for(R"("sample_token_logps": [[-1.0]])"),
              HasSubstr("bad.jsonl:1: field \"sample_token_logps\" has 1 rows but \"answers\" "
                        "has 2"));
  EXPECT_THAT(error_for(R"("sample_token_logps": [[-1.0], [0.5, 2.0]])"),
              HasSubstr("sample_token_logps row 1 holds 2"));
  EXPECT_THAT(error_for(R"("sample_token_logps": [[-1.0], "no"])"),
              HasSubstr("field \"sample_token_logps[1]\" must be an array of numbers"));
  EXPECT_THAT(error_for(R"("sample_token_logps": -1)"),
              HasSubstr("must be an array of arrays of numbers"));
}

}  // namespace
}  // namespace perpo
