// Output-path rules (output_paths.h): folders created / reused / refused, outputs never on inputs.
#include "perpo/core/output_paths.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

TEST(OutputDir, RunFolderMayHoldItsOwnInputsButNotWriteOverThem) {
  // The README's chain: sample writes runs/x/lists.jsonl, train reads it into run.dir runs/x,
  // eval reads runs/x/checkpoints/step-N into run.dir runs/x.
  fs::path run = scratch("run_inputs") / "x";
  OutputPolicy sample_policy;
  sample_policy.writes = {"config.yaml", "lists.jsonl"};
  prepare_output_dir(run, sample_policy);
  touch(run / "lists.jsonl", "{}");
  OutputPolicy train_policy{{run / "lists.jsonl"}, false};
  train_policy.writes = {"config.yaml", "log.txt", "metrics.jsonl", "checkpoints"};
  EXPECT_NO_THROW(prepare_output_dir(run, train_policy));
  fs::create_directories(run / "checkpoints" / "step-2");
  OutputPolicy eval_policy{{run / "checkpoints" / "step-2"}, false};
  eval_policy.writes = {"predictions.jsonl", "metrics.json"};
  EXPECT_NO_THROW(prepare_output_dir(run, eval_policy));
  // An entry the command writes is never an input, nor above or inside one, even with --force:
  // a user's config file in the folder, a checkpoint below an entry.
  touch(run / "my.yaml", "# my comments");
  OutputPolicy over_config{{run / "my.yaml"}, true};
  over_config.writes = {"my.yaml"};
  EXPECT_NE(error_of([&] { prepare_output_dir(run, over_config); }).find("is the input"),
            std::string::npos);
  OutputPolicy over_checkpoint{{run / "checkpoints" / "step-2"}, true};
  over_checkpoint.writes = {"checkpoints"};
  EXPECT_NE(error_of([&] { prepare_output_dir(run, over_checkpoint); }).find("above the input"),
            std::string::npos);
  // A folder that is replaced whole (writes empty: export) may hold no input.
  OutputPolicy replaced{{run / "lists.jsonl"}, true};
  EXPECT_NE(error_of([&] { prepare_output_dir(run, replaced); }).find("above the input"),
            std::string::npos);
  EXPECT_EQ(read_file(run / "my.yaml"), "# my comments");
}

TEST(OutputDir, MarkedFolderOfAnotherKindIsRefusedUnlessForced) {
  fs::path root = scratch("kinds");
  prepare_output_dir(root / "run", {});  // a run folder (sample / train / eval)
  EXPECT_EQ(output_marker_kind(root / "run"), std::optional<std::string>("run"));
  touch(root / "run" / "metrics.jsonl");
  OutputPolicy export_policy;
  export_policy.kind = OutputPolicy::kOutputKindExport;
  const std::string message = error_of([&] { prepare_output_dir(root / "run", export_policy); });
  EXPECT_NE(message.find("holds a run folder"), std::string::npos) << message;
  EXPECT_NE(message.find("not an export"), std::string::npos) << message;
  EXPECT_EQ(exit_code_of([&] { prepare_output_dir(root / "run", export_policy); }), 2);
  EXPECT_EQ(output_marker_kind(root / "run"), std::optional<std::string>("run"));
  export_policy.force = true;
  prepare_output_dir(root / "run", export_policy);
  EXPECT_EQ(output_marker_kind(root / "run"), std::optional<std::string>("export"));
  // A marker of an older perpo (no kind) is reused by run commands only.
  fs::create_directories(root / "old");
  touch(root / "old" / kOutputMarkerName, "This folder was written by perpo.\n");
  touch(root / "old" / "metrics.jsonl");
  EXPECT_EQ(output_marker_kind(root / "old"), std::optional<std::string>(""));
  EXPECT_NO_THROW(prepare_output_dir(root / "old", {}));
  fs::create_directories(root / "old2");
  touch(root / "old2" / kOutputMarkerName, "This folder was written by perpo.\n");
  touch(root / "old2" / "records.jsonl");
  OutputPolicy dataset;
  dataset.kind = OutputPolicy::kOutputKindDataset;
  EXPECT_EQ(exit_code_of([&] { prepare_output_dir(root / "old2", dataset); }), 2);
  EXPECT_EQ(output_marker_kind(root / "nothing"), std::nullopt);
}

TEST(OutputLock, SecondHolderIsRefusedWithThePidAndTheLockDiesWithItsProcess) {
  fs::path root = scratch("lock");
  {
    OutputLock held = prepare_output_dir(root / "run", {});
    ASSERT_TRUE(held.held());
    // Another process (a child, so flock sees two open file descriptions) is refused.
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      std::string message = error_of([&] { OutputLock::folder(root / "run", "run folder"); });
      const bool ok = message.find("in use by another perpo process (pid " +
                                   std::to_string(::getppid()) + ")") != std::string::npos;
      ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    // The marked folder is still reused by the holder's own kind once it is released.
  }
  EXPECT_FALSE(fs::exists(root / "run" / ".perpo-lock"));
  // A holder killed with SIGKILL leaves its lock file, but not its lock.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    OutputLock lock = OutputLock::file(root / "out.jsonl");
    ::pause();
    ::_exit(0);
  }
  for (int i = 0; i < 500 && !fs::exists(root / ".out.jsonl.perpo-lock"); ++i) ::usleep(10000);
  for (int i = 0; i < 500 && fs::file_size(root / ".out.jsonl.perpo-lock") == 0; ++i) {
    ::usleep(10000);
  }
  EXPECT_NE(error_of([&] { OutputLock::file(root / "out.jsonl"); }).find("in use"),
            std::string::npos);
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  OutputLock again = OutputLock::file(root / "out.jsonl");
  EXPECT_TRUE(again.held());
  // Devices are written in place and not locked.
  EXPECT_FALSE(OutputLock::file("/dev/null").held());
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
