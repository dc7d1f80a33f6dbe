// Output-path rules (output_paths.h): folders created / reused / refused, outputs never on inputs.
#include "perpo/core/output_paths.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "test_util.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;
using test::error_of;

fs::path scratch(const std::string& name) { return test::fresh_scratch_dir("output_paths", name); }

void touch(const fs::path& path, const std::string& text = "user data") {
  std::ofstream(path) << text;
}

int exit_code_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.exit_code();
  }
  return 0;
}

TEST(OutputDir, AbsentFolderIsCreatedAndMarked) {
  fs::path out = scratch("absent") / "a" / "run";
  prepare_output_dir(out, {});
  EXPECT_TRUE(fs::is_directory(out));
  EXPECT_TRUE(has_output_marker(out));
}

TEST(OutputDir, EmptyFolderAndMarkedFolderAreReused) {
  fs::path empty = scratch("empty");
  prepare_output_dir(empty, {});
  EXPECT_TRUE(has_output_marker(empty));
  // Now marked, with perpo's files in it: reused again without --force.
  touch(empty / "model.safetensors", "weights");
  prepare_output_dir(empty, {});
  EXPECT_TRUE(fs::exists(empty / "model.safetensors"));
}

TEST(OutputDir, FolderOfUserFilesIsRefusedWithHintUnlessForced) {
  fs::path out = scratch("user");
  touch(out / "thesis.tex");
  std::string message = error_of([&] { prepare_output_dir(out, {}); });
  EXPECT_NE(message.find("already holds files that perpo did not write"), std::string::npos);
  EXPECT_NE(message.find("--force"), std::string::npos);
  EXPECT_EQ(exit_code_of([&] { prepare_output_dir(out, {}); }), 2);
  EXPECT_FALSE(has_output_marker(out));  // refused: nothing written
  prepare_output_dir(out, {{}, /*force=*/true});
  EXPECT_TRUE(has_output_marker(out));
  EXPECT_TRUE(fs::exists(out / "thesis.tex"));  // prepare never removes anything
}

TEST(OutputDir, RegularFileFifoAndFileParentAreRefusedEvenWithForce) {
  fs::path dir = scratch("not_folder");
  touch(dir / "notes.txt");
  for (bool force : {false, true}) {
    std::string message = error_of([&] { prepare_output_dir(dir / "notes.txt", {{}, force}); });
    EXPECT_NE(message.find("is a regular file, not a folder"), std::string::npos) << message;
  }
  ASSERT_EQ(::mkfifo((dir / "pipe").c_str(), 0644), 0);
  EXPECT_NE(error_of([&] {
              prepare_output_dir(dir / "pipe", {{}, true});
            }).find("a FIFO"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              prepare_output_dir(dir / "notes.txt" / "out", {});
            }).find("is a regular file, not a folder"),
            std::string::npos);
  EXPECT_EQ(read_file(dir / "notes.txt"), "user data");
}

TEST(OutputDir, EqualInsideOrAboveAnInputIsAlwaysRefused) {
  fs::path root = scratch("overlap");
  fs::path checkpoint = root / "models" / "ckpt";
  fs::create_directories(checkpoint);
  touch(checkpoint / "model.safetensors", "weights");
  const OutputPolicy forced{{checkpoint}, true};
  EXPECT_NE(error_of([&] { prepare_output_dir(checkpoint, forced); }).find("is the input"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              prepare_output_dir(checkpoint / "export", forced);
            }).find("inside the input folder"),
            std::string::npos);
  EXPECT_NE(error_of([&] { prepare_output_dir(root / "models", forced); }).find("above the input"),
            std::string::npos);
  EXPECT_NE(error_of([&] { prepare_output_dir(root, forced); }).find("above the input"),
            std::string::npos);
  // Spelled with "..", ".", a trailing slash, or through a symlink: still the same folders.
  EXPECT_NE(error_of([&] {
              prepare_output_dir(checkpoint / ".." / "ckpt" / "." / "", forced);
            }).find("is the input"),
            std::string::npos);
  fs::create_directory_symlink(root / "models", root / "link");
  EXPECT_NE(
      error_of([&] { prepare_output_dir(root / "link" / "ckpt", forced); }).find("is the input"),
      std::string::npos);
  EXPECT_NE(error_of([&] { prepare_output_dir(root / "link", forced); }).find("above the input"),
            std::string::npos);
  EXPECT_FALSE(has_output_marker(checkpoint));
  EXPECT_FALSE(has_output_marker(root / "models"));
  // A sibling is fine.
  prepare_output_dir(root / "models" / "ckpt-export", {{checkpoint}});
  EXPECT_TRUE(has_output_marker(root / "models" / "ckpt-export"));
}

TEST(OutputDir, CurrentFolderAboveTheInputIsRefused) {
  fs::path root = scratch("dot");
  fs::create_directories(root / "ckpt");
  const fs::path previous = fs::current_path();
  fs::current_path(root);
  std::string message = error_of([&] { prepare_output_dir(".", {{"ckpt"}, true}); });
  fs::current_path(previous);
  EXPECT_NE(message.find("above the input"), std::string::npos) << message;
}

TEST(OutputFile, RulesForEachKindOfPath) {
  fs::path dir = scratch("file");
  touch(dir / "input.jsonl");
  const OutputPolicy policy{{dir / "input.jsonl"}};
  check_output_file(dir / "new.jsonl", policy);  // absent
  touch(dir / "old.jsonl");
  // An existing regular file: refused without --force, accepted with it or when the command
  // continues its own output (sample's resume checks the content itself).
  EXPECT_NE(error_of([&] { check_output_file(dir / "old.jsonl", policy); }).find("--force"),
            std::string::npos);
  check_output_file(dir / "old.jsonl", {policy.inputs, /*force=*/true});
  check_output_file(dir / "old.jsonl", {policy.inputs, false, /*continue_existing=*/true});
  EXPECT_NE(error_of([&] {
              check_output_file(dir / "input.jsonl", {policy.inputs, true, true});
            }).find("is the input"),
            std::string::npos);
  check_output_file("/dev/null", policy);  // character device: in place
  ASSERT_EQ(::mkfifo((dir / "pipe").c_str(), 0644), 0);
  check_output_file(dir / "pipe", policy);  // FIFO: in place
  EXPECT_NE(error_of([&] { check_output_file(dir, policy); }).find("is a folder"),
            std::string::npos);
  EXPECT_NE(error_of([&] { check_output_file(dir / "input.jsonl", policy); }).find("is the input"),
            std::string::npos);
  // A symlink or a hard link to the input is the input.
  fs::create_symlink(dir / "input.jsonl", dir / "alias.jsonl");
  EXPECT_NE(error_of([&] { check_output_file(dir / "alias.jsonl", policy); }).find("is the input"),
            std::string::npos);
  fs::create_hard_link(dir / "input.jsonl", dir / "hard.jsonl");
  EXPECT_NE(error_of([&] { check_output_file(dir / "hard.jsonl", policy); }).find("is the input"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              check_output_file(dir / "input.jsonl" / "x", policy);
            }).find("inside the input folder"),
            std::string::npos);
  EXPECT_EQ(read_file(dir / "input.jsonl"), "user data");
}

}  // namespace
}  // namespace perpo
