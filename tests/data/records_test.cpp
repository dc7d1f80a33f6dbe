// Readers and writers of records: every kind of bad record is reported with its file and line
// (or skipped and counted), the authors' format is imported, writers append whole lines only.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/data/jsonl.h"
#include "perpo/data/jsonl_writer.h"
#include "test_paths.h"
#include "test_util.h"

namespace perpo {
namespace {

namespace fs = std::filesystem;

fs::path fixtures() { return fs::path(test::kTestsDir) / "fixtures" / "data"; }

// A scratch folder holding a copy of the fixture images, so relative image paths resolve.
fs::path scratch(const std::string& name) {
  const fs::path dir = fs::path(test::kScratchDir) / "data" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy(fixtures() / "images", dir / "images", fs::copy_options::recursive);
  return dir;
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

const std::string kGoodList =
    R"({"id": "a", "task": "grounding", "image": "images/gradient_8x6.png", "prompt": "p",)"
    R"( "ground_truth": "[0.1, 0.2, 0.3, 0.4]", "answers": ["x", "y"], "rewards": [1, 0]})";

TEST(ReadLists, ReadsFieldsResolvesImagesAndKeepsUnknownFields) {
  ReadReport report;
  const auto lists = read_preference_lists(fixtures() / "lists.jsonl", ReadOptions{}, &report);
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(report.records, 2u);
  EXPECT_EQ(report.skipped, 0u);
  const PreferenceList& first = lists[0];
  EXPECT_EQ(first.record.id, "refcoco-val-17");
  EXPECT_EQ(first.record.task, "grounding");
  EXPECT_EQ(first.record.image_path, fixtures() / "images" / "gradient_8x6.png");
  EXPECT_EQ(first.record.ground_truth, "[0.61, 0.1, 0.77, 0.54]");
  EXPECT_EQ(first.answers.size(), 3u);
  EXPECT_EQ(first.rewards, (std::vector<double>{0.8, 0.65, 0.0}));
  EXPECT_EQ(first.ref_logps, (std::vector<double>{-3.21, -4.02, -9.7}));
  EXPECT_EQ(first.record.extra["reward_notes"], nlohmann::json({"ok", "ok", "ok"}));
  EXPECT_EQ(first.record.source.line, 1u);
  // Line 2 is blank; the second record is on line 3, its numeric id read as text.
  EXPECT_EQ(lists[1].record.id, "18");
  EXPECT_EQ(lists[1].record.source.line, 3u);
  EXPECT_FALSE(lists[1].has_ref_logps());
}

TEST(ReadDataset, DefaultsIdAndRequiresGroundTruth) {
  const fs::path dir = scratch("dataset");
  write_text(dir / "set.jsonl", R"({"image": "images/gradient_8x6.png", "prompt": "p",)"
                                R"( "ground_truth": "g", "answers": [1]})"
                                "\n");
  const auto records = read_dataset(dir / "set.jsonl", ReadOptions{});
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].id, "set-1");
  EXPECT_EQ(records[0].extra["answers"], nlohmann::json({1}));  // not a list: kept as extra
  EXPECT_EQ(to_json(records[0])["answers"], nlohmann::json({1}));

  write_text(dir / "set.jsonl", R"({"image": "images/gradient_8x6.png", "prompt": "p"})");
  EXPECT_THROW(read_dataset(dir / "set.jsonl", ReadOptions{}), Error);
  ReadOptions options;
  options.require_ground_truth = false;
  EXPECT_EQ(read_dataset(dir / "set.jsonl", options).size(), 1u);
}

struct BadRecordCase {
  std::string name;
  std::string line;      // the record written on line 3 of the file
  std::string expected;  // part of the error message after "<file>:3: "
  ImageCheck check = ImageCheck::kSignature;
};

class BadRecord : public ::testing::TestWithParam<BadRecordCase> {};

TEST_P(BadRecord, ErrorNamesFileAndLineOrIsSkippedAndCounted) {
  const BadRecordCase& c = GetParam();
  const fs::path dir = scratch("bad_" + c.name);
  const fs::path file = dir / "lists.jsonl";
  write_text(file, kGoodList + "\n\n" + c.line + "\n" + kGoodList + "\n");
  ReadOptions options;
  options.image_check = c.check;
  try {
    read_preference_lists(file, options);
    FAIL() << "expected an error for " << c.name;
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error());
    const std::string message = e.what();
    EXPECT_NE(message.find(file.string() + ":3: "), std::string::npos) << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
  }
  options.skip_bad_records = true;
  ReadReport report;
  const auto lists = read_preference_lists(file, options, &report);
  EXPECT_EQ(lists.size(), 2u);
  EXPECT_EQ(report.records, 2u);
  EXPECT_EQ(report.skipped, 1u);
  ASSERT_EQ(report.skip_messages.size(), 1u);
  EXPECT_NE(report.skip_messages[0].find(":3: "), std::string::npos);
  EXPECT_EQ(lists[1].record.source.line, 4u);
}

const std::string kImage = R"("image": "images/gradient_8x6.png", "prompt": "p", )";

INSTANTIATE_TEST_SUITE_P(
    EveryKind, BadRecord,
    ::testing::Values(
        BadRecordCase{"invalid_json", R"({"id": "a", )", "not valid JSON"},
        BadRecordCase{"not_object", R"([1, 2])", "must be a JSON object, got an array"},
        BadRecordCase{"missing_prompt",
                      R"({"image": "images/gradient_8x6.png", "answers": ["x", "y"], )"
                      R"("rewards": [1, 0]})",
                      "field \"prompt\" is missing"},
        BadRecordCase{"missing_answers", "{" + kImage + R"("rewards": [1, 0]})",
                      "field \"answers\" is missing"},
        BadRecordCase{"missing_rewards", "{" + kImage + R"("answers": ["x", "y"]})",
                      "field \"rewards\" is missing"},
        BadRecordCase{"prompt_type",
                      R"({"image": "images/gradient_8x6.png", "prompt": 5, "answers": ["x", "y"],)"
                      R"( "rewards": [1, 0]})",
                      "field \"prompt\" must be a string, got a number"},
        BadRecordCase{"rewards_type", "{" + kImage + R"("answers": ["x", "y"], "rewards": "1, 0"})",
                      "field \"rewards\" must be an array of numbers, got a string"},
        BadRecordCase{"answer_entry_type",
                      "{" + kImage + R"("answers": ["x", 7], "rewards": [1, 0]})",
                      "field \"answers\" must be an array of strings, but entry 1 is a number"},
        BadRecordCase{"missing_image",
                      R"({"image": "images/nope.png", "prompt": "p", "answers": ["x", "y"],)"
                      R"( "rewards": [1, 0]})",
                      "images/nope.png does not exist"},
        BadRecordCase{
            "unreadable_image",
            R"({"image": "images/not_an_image.png", "prompt": "p", "answers": ["x", "y"],)"
            R"( "rewards": [1, 0]})",
            "not_an_image.png is not a PNG, JPEG, BMP, GIF or PNM file"},
        BadRecordCase{"undecodable_image",
                      R"({"image": "images/truncated.png", "prompt": "p", "answers": ["x", "y"],)"
                      R"( "rewards": [1, 0]})",
                      "truncated.png cannot be decoded", ImageCheck::kDecode},
        BadRecordCase{"rewards_count",
                      "{" + kImage + R"("answers": ["x", "y", "z"], "rewards": [1, 0]})",
                      "field \"rewards\" has 2 entries but \"answers\" has 3"},
        BadRecordCase{
            "ref_logps_count",
            "{" + kImage + R"("answers": ["x", "y"], "rewards": [1, 0], "ref_logps": [-1]})",
            "field \"ref_logps\" has 1 entries but \"answers\" has 2"},
        BadRecordCase{"one_answer", "{" + kImage + R"("answers": ["x"], "rewards": [1]})",
                      "needs at least 2 answers, got 1"}),
    [](const ::testing::TestParamInfo<BadRecordCase>& info) { return info.param.name; });

TEST(ReadLists, MissingFileIsAnInputErrorNamingIt) {
  try {
    read_preference_lists("/no/such/lists.jsonl", ReadOptions{});
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_input_error());
    EXPECT_NE(std::string(e.what()).find("/no/such/lists.jsonl"), std::string::npos);
  }
}

TEST(ReadLists, OptionsFollowDataConfig) {
  DataConfig config;
  EXPECT_FALSE(ReadOptions::from(config).skip_bad_records);
  config.on_bad_record = "skip";
  EXPECT_TRUE(ReadOptions::from(config).skip_bad_records);
}

TEST(AuthorsFormat, ImportsItemsWithTheirFields) {
  const fs::path file = fixtures() / "authors.json";
  EXPECT_EQ(detect_list_format(file, "auto"), "authors");
  EXPECT_EQ(detect_list_format(fixtures() / "lists.jsonl", "auto"), "perpo");
  const auto lists = read_lists(file, "auto", ReadOptions{});
  ASSERT_EQ(lists.size(), 2u);
  const PreferenceList& first = lists[0];
  EXPECT_EQ(first.record.id, "581857");
  EXPECT_EQ(first.record.task, "grounding");
  EXPECT_EQ(first.record.image_path, fixtures() / "images" / "gradient_8x6.png");
  // The leading "<image>\n" is dropped: the chat template places the image itself.
  EXPECT_EQ(first.record.prompt,
            "Please provide the bounding box coordinate of the region this sentence describes: "
            "the lady [left]");
  EXPECT_EQ(first.record.ground_truth, "[0.1, 0.2, 0.5, 0.9]");
  EXPECT_EQ(first.answers.size(), 3u);
  EXPECT_EQ(first.rewards, (std::vector<double>{1.0, 0.82, 0.0}));
  EXPECT_FALSE(first.has_ref_logps());
  EXPECT_EQ(first.record.source.line, 2u);  // the item's "{" is on line 2
  EXPECT_EQ(lists[1].record.id, "coco-9");
  EXPECT_EQ(lists[1].record.source.line, 10u);
  EXPECT_EQ(lists[1].record.extra["split"], "train");
}

TEST(AuthorsFormat, BadItemIsReportedByItsLine) {
  const fs::path dir = scratch("authors_bad");
  std::string text = read_file(fixtures() / "authors.json");
  const std::string good = R"("iou_scores": [1.0, 0.16])";
  text.replace(text.find(good), good.size(), R"("iou_scores": [1.0])");
  write_text(dir / "authors.json", text);
  try {
    read_authors_lists(dir / "authors.json", ReadOptions{});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("authors.json:10: field \"rewards\" has 1 entries"),
              std::string::npos)
        << e.what();
  }
  ReadOptions skip;
  skip.skip_bad_records = true;
  ReadReport report;
  EXPECT_EQ(read_authors_lists(dir / "authors.json", skip, &report).size(), 1u);
  EXPECT_EQ(report.skipped, 1u);
}

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(JsonlWriter, AppendsWholeLinesThatReadBack) {
  const fs::path dir = scratch("writer");
  const auto lists = read_preference_lists(fixtures() / "lists.jsonl", ReadOptions{});
  {
    JsonlWriter out(dir / "out" / "lists.jsonl", /*truncate=*/true);
    out.write(to_json(lists[0]));
    EXPECT_EQ(out.lines_written(), 1u);
  }
  {
    JsonlWriter out(dir / "out" / "lists.jsonl");  // appends
    out.write(to_json(lists[1]));
  }
  fs::copy(dir / "images", dir / "out" / "images", fs::copy_options::recursive);
  const auto back = read_preference_lists(dir / "out" / "lists.jsonl", ReadOptions{});
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(to_json(back[0]), to_json(lists[0]));
  EXPECT_EQ(to_json(back[1]), to_json(lists[1]));
  EXPECT_EQ(lines_of(dir / "out" / "lists.jsonl").size(), 2u);
  EXPECT_THROW(JsonlWriter(dir / "out" / "x.jsonl").write_line("two\nlines"), Error);
}

TEST(JsonlWriter, CutsAPartialLastLineBeforeAppending) {
  const fs::path dir = scratch("writer_repair");
  const fs::path file = dir / "lists.jsonl";
  // A crash left 12 bytes of a second line: {"b": 2, "c"  = 1 + 3 + 1 + 1 + 1 + 1 + 1 + 3.
  write_text(file, "{\"a\": 1}\n{\"b\": 2, \"c\"");
  JsonlWriter out(file);
  EXPECT_EQ(out.repaired_bytes(), 12u);
  out.write(nlohmann::json{{"d", 3}});
  EXPECT_EQ(lines_of(file), (std::vector<std::string>{"{\"a\": 1}", "{\"d\":3}"}));
  write_text(file, "partial");  // no newline at all
  EXPECT_EQ(JsonlWriter(file).repaired_bytes(), 7u);
  EXPECT_EQ(fs::file_size(file), 0u);
}

TEST(JsonlWriter, CompletesALastRecordThatOnlyLacksItsNewline) {
  // Before: a whole, valid last record without '\n' was cut off as if it were a partial write.
  const fs::path dir = scratch("writer_complete");
  const fs::path file = dir / "lists.jsonl";
  write_text(file, "{\"a\": 1}\n{\"b\": 2}");
  JsonlWriter out(file);
  EXPECT_EQ(out.repaired_bytes(), 0u);
  out.write(nlohmann::json{{"c", 3}});
  EXPECT_EQ(lines_of(file), (std::vector<std::string>{"{\"a\": 1}", "{\"b\": 2}", "{\"c\":3}"}));
  write_text(file, "{\"only\": true}  ");
  EXPECT_EQ(JsonlWriter(file).repaired_bytes(), 0u);
  EXPECT_EQ(read_file(file), "{\"only\": true}  \n");
  write_text(file, "{\"a\": 1}\n[1, 2]");  // valid JSON but not a record: cut
  EXPECT_EQ(JsonlWriter(file).repaired_bytes(), 6u);
}

TEST(ReadLists, AFifoIsReadOnceWithFormatDetection) {
  // Before: detection read the first byte(s) of the pipe, and the reader lost them.
  const fs::path dir = scratch("fifo");
  const fs::path fifo = dir / "lists.pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  const std::string text = read_file(fixtures() / "lists.jsonl");
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::ofstream(fifo) << text;
    ::_exit(0);
  }
  ReadOptions options;
  options.image_check = ImageCheck::kNone;
  const auto lists = read_lists(fifo, "auto", options);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_EQ(lists.size(), 2u);
  EXPECT_NE(test::error_of([&] { detect_list_format(fifo, "auto"); }).find("not a regular file"),
            std::string::npos);
}

TEST(ReadLists, DevicesAndHugeLinesAreRefused) {
  EXPECT_NE(test::error_of([] {
              read_lists("/dev/zero", "auto", ReadOptions{});
            }).find("it is a character device"),
            std::string::npos);
  const fs::path dir = scratch("huge_line");
  write_text(dir / "lists.jsonl", kGoodList + "\n" + std::string(2000, ' ') + "{}\n");
  ReadOptions options;
  options.max_line_bytes = 1000;
  EXPECT_NE(test::error_of([&] {
              read_preference_lists(dir / "lists.jsonl", options);
            }).find("lists.jsonl:2: the line has 2002 bytes, more than the 1000"),
            std::string::npos);
}

TEST(ReadLists, NumericGroundTruthAndOptionalPrompt) {
  const fs::path dir = scratch("numeric");
  write_text(dir / "lists.jsonl",
             R"({"answers": ["4", "5"], "ground_truth": 4.5, "rewards": [0, 1]})"
             "\n");
  ReadOptions options;
  options.require_prompt = false;
  options.image_check = ImageCheck::kNone;
  const auto lists = read_preference_lists(dir / "lists.jsonl", options);
  ASSERT_EQ(lists.size(), 1u);
  EXPECT_EQ(lists[0].record.ground_truth, "4.5");
  EXPECT_TRUE(lists[0].record.image_path.empty());
  // By default a list needs its image and prompt.
  EXPECT_NE(test::error_of([&] {
              read_preference_lists(dir / "lists.jsonl", ReadOptions{});
            }).find("field \"image\" is missing"),
            std::string::npos);
}

}  // namespace
}  // namespace perpo
