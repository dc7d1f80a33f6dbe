// read_input_file: regular files and pipes read once; devices, folders and oversize refused.
#include "perpo/core/input_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;
using test::error_of;

TEST(InputFile, ReadsRegularFilesWhole) {
  fs::path dir = test::fresh_scratch_dir("input_file", "regular");
  std::ofstream(dir / "a.jsonl") << "{\"a\": 1}\n{\"b\": 2}";
  EXPECT_EQ(read_input_file(dir / "a.jsonl"), "{\"a\": 1}\n{\"b\": 2}");
  std::ofstream(dir / "empty.jsonl");
  EXPECT_EQ(read_input_file(dir / "empty.jsonl"), "");
}

TEST(InputFile, ReadsAFifoOnceAndWhole) {
  fs::path fifo = test::fresh_scratch_dir("input_file", "fifo") / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  const std::string sent = std::string(200000, 'x') + "\nlast line\n";  // more than a pipe buffer
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::ofstream(fifo) << sent;
    ::_exit(0);
  }
  EXPECT_EQ(read_input_file(fifo), sent);
  int status = 0;
  ::waitpid(child, &status, 0);
}

TEST(InputFile, DevicesFoldersAndMissingFilesAreRefused) {
  EXPECT_NE(
      error_of([] { read_input_file("/dev/zero"); }).find("/dev/zero: it is a character device"),
      std::string::npos);
  fs::path dir = test::fresh_scratch_dir("input_file", "refused");
  EXPECT_NE(error_of([&] { read_input_file(dir); }).find("it is a folder"), std::string::npos);
  EXPECT_NE(error_of([&] { read_input_file(dir / "nope.jsonl"); }).find("no such file"),
            std::string::npos);
}

TEST(InputFile, SizeLimitIsCheckedForFilesAndPipes) {
  fs::path dir = test::fresh_scratch_dir("input_file", "limit");
  std::ofstream(dir / "big.jsonl") << std::string(1000, 'x');
  EXPECT_NE(error_of([&] { read_input_file(dir / "big.jsonl", 999); }).find("has 1000 bytes"),
            std::string::npos);
  EXPECT_EQ(read_input_file(dir / "big.jsonl", 1000).size(), 1000u);
  fs::path fifo = dir / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::ofstream out(fifo);
    for (int i = 0; i < 1000 && out; ++i) out << std::string(1000, 'y');  // stops when closed
    ::_exit(0);
  }
  EXPECT_NE(error_of([&] { read_input_file(fifo, 5000); }).find("holds more than"),
            std::string::npos);
  int status = 0;
  ::waitpid(child, &status, 0);
}

}  // namespace
}  // namespace perpo
