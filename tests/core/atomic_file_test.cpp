#include "perpo/core/atomic_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>

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

TEST(AtomicFile, SymlinkIsFollowedAndKept) {
  fs::path dir = fresh_dir("symlink");
  write_file_atomic(dir / "real.jsonl", "old");
  fs::create_symlink("real.jsonl", dir / "link.jsonl");
  write_file_atomic(dir / "link.jsonl", "new");
  EXPECT_TRUE(fs::is_symlink(dir / "link.jsonl"));  // the link is not replaced by a file
  EXPECT_EQ(read_file(dir / "real.jsonl"), "new");
  // A dangling link: its target is created, the link stays.
  fs::create_symlink("later.jsonl", dir / "dangling.jsonl");
  write_file_atomic(dir / "dangling.jsonl", "made");
  EXPECT_TRUE(fs::is_symlink(dir / "dangling.jsonl"));
  EXPECT_EQ(read_file(dir / "later.jsonl"), "made");
}

TEST(AtomicFile, FifoIsWrittenInPlaceNotReplaced) {
  fs::path dir = fresh_dir("fifo");
  fs::path fifo = dir / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // the reader on the other end
    std::ifstream in(fifo);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ::_exit(text == "through the pipe\n" ? 0 : 1);
  }
  write_file_atomic(fifo, "through the pipe\n");
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(fs::is_fifo(fifo));
}

TEST(AtomicFile, DevStdoutRedirectedToAFileIsAppendedNotReplaced) {
  // `perpo score --output /dev/stdout > log` must not replace (or cut) the file the shell opened.
  fs::path log = fresh_dir("dev_stdout") / "log.txt";
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::write(1, "before\n", 7);
    write_file_atomic("/dev/stdout", "record\n");
    ::write(1, "after\n", 6);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(read_file(log), "before\nrecord\nafter\n");
}

TEST(AtomicFile, DevNullStaysADevice) {
  write_file_atomic("/dev/null", "discarded");
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

TEST(AtomicFile, WriteErrorOnDeviceIsReported) {
  EXPECT_THROW(write_file_atomic("/dev/full", std::string(1 << 16, 'x')), Error);
}

TEST(AtomicFile, FolderTargetIsRefusedAsInputError) {
  fs::path dir = fresh_dir("folder_target");
  fs::create_directory(dir / "sub");
  try {
    write_file_atomic(dir / "sub", "x");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_NE(std::string(e.what()).find("a folder"), std::string::npos);
  }
  EXPECT_TRUE(fs::is_directory(dir / "sub"));
}

TEST(AtomicFile, StaleTempFilesOfDeadProcessesAreSwept) {
  fs::path dir = fresh_dir("stale");
  fs::path file = dir / "scored.jsonl";
  // A process that has exited: its pid names a temp file nobody will finish.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  const std::string dead = std::to_string(child);
  write_file_atomic(dir / (".scored.jsonl.perpo-tmp-" + dead + "-0"), "stale");
  // Names that only look like perpo's are the user's files and stay (issue 21: a user's
  // ".out.jsonl.tmp-2024" was swept): another tag, no counter, letters after the counter.
  write_file_atomic(dir / (".scored.jsonl.tmp-" + dead + "-3"), "user's, another tag");
  write_file_atomic(dir / (".scored.jsonl.tmp-" + dead), "user's, no counter");
  write_file_atomic(dir / (".scored.jsonl.perpo-tmp-" + dead), "user's, no counter");
  write_file_atomic(dir / (".scored.jsonl.perpo-tmp-" + dead + "-0.bak"), "user's backup");
  // A live process's temp file (ours: pid 1 is always alive) and other files stay.
  write_file_atomic(dir / ".scored.jsonl.perpo-tmp-1-0", "someone else's");
  write_file_atomic(dir / (".other.jsonl.perpo-tmp-" + dead + "-0"), "another target");
  write_file_atomic(file, "new");
  EXPECT_FALSE(fs::exists(dir / (".scored.jsonl.perpo-tmp-" + dead + "-0")));
  EXPECT_TRUE(fs::exists(dir / (".scored.jsonl.tmp-" + dead + "-3")));
  EXPECT_TRUE(fs::exists(dir / (".scored.jsonl.tmp-" + dead)));
  EXPECT_TRUE(fs::exists(dir / (".scored.jsonl.perpo-tmp-" + dead)));
  EXPECT_TRUE(fs::exists(dir / (".scored.jsonl.perpo-tmp-" + dead + "-0.bak")));
  EXPECT_TRUE(fs::exists(dir / ".scored.jsonl.perpo-tmp-1-0"));
  EXPECT_TRUE(fs::exists(dir / (".other.jsonl.perpo-tmp-" + dead + "-0")));
  EXPECT_EQ(read_file(file), "new");
}

TEST(AtomicFile, TempFileIsNamedSoUsersCanTellWhatItIs) {
  fs::path dir = fresh_dir("naming");
  AtomicFileWriter writer(dir / "out.jsonl");
  EXPECT_EQ(writer.temp_path().filename().string().rfind(".out.jsonl.perpo-tmp-", 0), 0u);
}

}  // namespace
}  // namespace perpo
