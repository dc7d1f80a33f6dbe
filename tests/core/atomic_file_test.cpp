#include "perpo/core/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "perpo/core/error.h"
#include "test_paths.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::path(test::kScratchDir) / "atomic_file" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(AtomicFile, WritesAndReplaces) {
  fs::path file = fresh_dir("replace") / "metrics.json";
  write_file_atomic(file, "old");
  EXPECT_EQ(read_file(file), "old");
  write_file_atomic(file, "new content");
  EXPECT_EQ(read_file(file), "new content");
  // No temporary files are left behind.
  int entries = 0;
  for (const auto& entry : fs::directory_iterator(file.parent_path())) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(AtomicFile, CreatesParentFolders) {
  fs::path file = fresh_dir("parents") / "a" / "b" / "c.txt";
  write_file_atomic(file, "x");
  EXPECT_EQ(read_file(file), "x");
}

TEST(AtomicFile, UncommittedWriterLeavesOldFileIntact) {
  fs::path file = fresh_dir("uncommitted") / "config.yaml";
  write_file_atomic(file, "old");
  fs::path temp;
  {
    AtomicFileWriter writer(file);
    writer.stream() << "half of the new";
    temp = writer.temp_path();
    EXPECT_TRUE(fs::exists(temp));
  }  // destroyed without commit, as when an exception unwinds
  EXPECT_EQ(read_file(file), "old");
  EXPECT_FALSE(fs::exists(temp));
}

TEST(AtomicFile, CrashBetweenWriteAndRenameLeavesOldFileIntact) {
  fs::path file = fresh_dir("crash") / "checkpoint.bin";
  write_file_atomic(file, "old complete file");
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child writes the new content, flushes it to disk and dies before commit() renames it.
    AtomicFileWriter writer(file);
    writer.stream() << std::string(1 << 16, 'n');
    writer.stream().flush();
    ::_exit(0);  // no destructors, no rename: what a crash looks like
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(read_file(file), "old complete file");
}

TEST(AtomicFile, ReadMissingFileIsInputErrorNamingIt) {
  try {
    read_file("/nonexistent/perpo/file.yaml");
    FAIL() << "read_file did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/perpo/file.yaml"), std::string::npos);
  }
}

TEST(AtomicFile, UnwritableFolderFailsClearly) {
  // A folder below a regular file cannot exist, even for root.
  fs::path dir = fresh_dir("unwritable");
  write_file_atomic(dir / "plain", "x");
  EXPECT_THROW(write_file_atomic(dir / "plain" / "child.txt", "y"), Error);
}

}  // namespace
}  // namespace perpo
