// `perpo data synth` end to end: runs the executable as a user would.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "run_perpo.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using perpo::test::run_perpo;

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

TEST(CliData, SynthWritesRecordsAndImagesReproducibly) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_data", "synth");
  for (const char* name : {"a", "b"}) {
    const auto r =
        run_perpo("data synth --task grounding --n 6 --seed 3 --out " + (dir / name).string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("wrote 6 grounding records"), std::string::npos) << r.output;
  }
  const std::string records = slurp(dir / "a" / "records.jsonl");
  EXPECT_EQ(count_lines(records), 6u);
  EXPECT_NE(records.find("\"image\":\"images/grounding-000005.png\""), std::string::npos);
  EXPECT_EQ(records, slurp(dir / "b" / "records.jsonl"));
  for (int i = 0; i < 6; ++i) {
    const std::string png = "images/grounding-00000" + std::to_string(i) + ".png";
    const std::string bytes = slurp(dir / "a" / png);
    EXPECT_EQ(bytes.substr(0, 4), "\x89PNG") << png;
    EXPECT_EQ(bytes, slurp(dir / "b" / png)) << png;
  }
  // The records are scored by `perpo score` like any dataset: ground truth against itself.
  const auto ocr = run_perpo("data synth -t ocr -n 3 -o " + (dir / "ocr").string());
  ASSERT_EQ(ocr.exit_code, 0) << ocr.output;
  EXPECT_EQ(count_lines(slurp(dir / "ocr" / "records.jsonl")), 3u);
}

TEST(CliData, RefusesANonEmptyFolderAndBadOptions) {
  const fs::path dir = perpo::test::fresh_scratch_dir("cli_data", "refuse");
  std::ofstream(dir / "keep.txt") << "user data";
  auto r = run_perpo("data synth --task ocr --n 2 --out " + dir.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("is not empty"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--force"), std::string::npos) << r.output;
  r = run_perpo("data synth --task ocr --n 2 --force --out " + dir.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(slurp(dir / "keep.txt"), "user data");
  r = run_perpo("data synth --task vqa --n 2 --out " + (dir / "x").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run_perpo("data synth --task ocr --n 0 --out " + (dir / "y").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(">= 1"), std::string::npos) << r.output;
  r = run_perpo("data synth --task ocr --n 2 --font /no/font.ttf --out " + (dir / "z").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("/no/font.ttf"), std::string::npos) << r.output;
}

}  // namespace
