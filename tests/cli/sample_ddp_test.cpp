// `perpo sample`, `perpo logps` and `perpo eval` data parallel (issue 24): 2 and 3 ranks on
// 127.0.0.1 with Gloo write the file one process writes, byte for byte, and leave no part files; a
// file begun by one process is continued by the ranks to the same end.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "dist_job.h"
#include "test_util.h"
#include "train_fixture.h"

namespace {
namespace fs = std::filesystem;
using perpo::test::read_file_text;
using perpo::test::run_job;

std::vector<std::string> sample_command(const fs::path& records, const fs::path& output) {
  std::vector<std::string> args = {"sample"};
  for (const auto& o : perpo::test::tiny_train_overrides(records, output.parent_path() / "run")) {
    args.push_back(o);
  }
  for (const std::string o :
       {"sampling.num_answers=3", "sampling.max_new_tokens=6", "sampling.lists_per_batch=2",
        "sampling.temperature=1.0", "data.max_answer_tokens=16"}) {
    args.push_back(o);
  }
  args.push_back("sampling.output=" + output.string());
  return args;
}

bool has_part_files(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().find(".rank-") != std::string::npos) return true;
  }
  return false;
}

TEST(DataParallelSample, WritesTheFileOneProcessWrites) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_sample_ddp", "equal");
  const fs::path records = perpo::test::write_train_records(dir, 7);
  run_job(1, sample_command(records, dir / "one.jsonl"), dir / "logs-one");
  const std::string one = read_file_text(dir / "one.jsonl");
  ASSERT_FALSE(one.empty());
  for (int world : {2, 3}) {
    SCOPED_TRACE("world " + std::to_string(world));
    const fs::path output = dir / ("many-" + std::to_string(world) + ".jsonl");
    run_job(world, sample_command(records, output), dir / ("logs-" + std::to_string(world)));
    EXPECT_EQ(read_file_text(output), one);
    EXPECT_FALSE(has_part_files(dir));
    EXPECT_NE(read_file_text(dir / ("logs-" + std::to_string(world)) / "rank0.log")
                  .find("wrote " + output.string()),
              std::string::npos);
  }
}

// Lists of the first records written by one process are kept; the ranks sample the rest.
TEST(DataParallelSample, ContinuesAFileBegunByOneProcess) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_sample_ddp", "continue");
  const fs::path all = perpo::test::write_train_records(dir, 7);
  const fs::path first = perpo::test::write_train_records(dir / "first", 3);
  run_job(1, sample_command(all, dir / "one.jsonl"), dir / "logs-one");
  run_job(1, sample_command(first, dir / "begun.jsonl"), dir / "logs-begun");
  run_job(2, sample_command(all, dir / "begun.jsonl"), dir / "logs-continued");
  EXPECT_EQ(read_file_text(dir / "begun.jsonl"), read_file_text(dir / "one.jsonl"));
  EXPECT_NE(read_file_text(dir / "logs-continued" / "rank0.log").find("(3 from an earlier run)"),
            std::string::npos)
      << read_file_text(dir / "logs-continued" / "rank0.log");
}

// perpo logps on 2 ranks writes the file one process writes.
TEST(DataParallelLogps, WritesTheFileOneProcessWrites) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_sample_ddp", "logps");
  const fs::path records = perpo::test::write_train_records(dir, 5);
  run_job(1, sample_command(records, dir / "lists.jsonl"), dir / "logs-sample");
  auto logps = [&](const fs::path& output) {
    std::vector<std::string> args = {"logps", "--input", (dir / "lists.jsonl").string(), "--output",
                                     output.string()};
    for (const auto& o : perpo::test::tiny_train_overrides(records, dir / "run")) args.push_back(o);
    return args;
  };
  run_job(1, logps(dir / "one.jsonl"), dir / "logs-one");
  run_job(2, logps(dir / "two.jsonl"), dir / "logs-two");
  const std::string one = read_file_text(dir / "one.jsonl");
  ASSERT_FALSE(one.empty());
  EXPECT_EQ(read_file_text(dir / "two.jsonl"), one);
  EXPECT_FALSE(has_part_files(dir));
}

// perpo eval on 3 ranks (batches dealt out) writes the predictions and metrics of one process.
TEST(DataParallelEval, WritesThePredictionsAndMetricsOfOneProcess) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_sample_ddp", "eval");
  const fs::path records = perpo::test::write_train_records(dir, 7);
  auto eval = [&](const fs::path& out) {
    std::vector<std::string> args = {"eval", "--input", records.string(), "--out", out.string()};
    for (const auto& o : perpo::test::tiny_train_overrides(records, dir / "run")) args.push_back(o);
    args.push_back("eval.batch_size=2");
    args.push_back("eval.max_new_tokens=6");
    return args;
  };
  run_job(1, eval(dir / "one"), dir / "logs-one");
  run_job(3, eval(dir / "three"), dir / "logs-three");
  for (const char* file : {"predictions.jsonl", "metrics.json"}) {
    const std::string one = read_file_text(dir / "one" / file);
    ASSERT_FALSE(one.empty()) << file;
    EXPECT_EQ(read_file_text(dir / "three" / file), one) << file;
  }
  EXPECT_NE(read_file_text(dir / "one" / "predictions.jsonl").find("rec-6"), std::string::npos);
}

}  // namespace
