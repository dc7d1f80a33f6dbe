// SIGINT / SIGTERM handling (signals.h). Each case runs in a forked child, so the test process
// keeps its own signal dispositions.
#include "perpo/core/signals.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

#include "perpo/core/atomic_file.h"
#include "test_util.h"

namespace perpo {
namespace {
namespace fs = std::filesystem;

/// Forks; the child runs `body` (which writes one byte to `ready` when set up) and never returns.
/// The parent waits for that byte, sends `signals` (one after another) and returns the status.
template <typename Body>
int run_child_and_signal(Body body, std::initializer_list<int> signals) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return -1;
  pid_t child = ::fork();
  if (child == 0) {
    ::close(pipe_fds[0]);
    body(pipe_fds[1]);
    ::_exit(99);
  }
  ::close(pipe_fds[1]);
  char byte = 0;
  if (::read(pipe_fds[0], &byte, 1) != 1) return -1;
  for (int sig : signals) {
    ::kill(child, sig);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  // A byte written after the first signal means the child saw stop_requested().
  ssize_t got = ::read(pipe_fds[0], &byte, 1);
  ::close(pipe_fds[0]);
  return got == 1 ? status | 0x10000 : status;
}

TEST(Signals, SigtermInExitModeRemovesTheTempFileOfAnUncommittedWrite) {
  fs::path dir = test::fresh_scratch_dir("signals", "exit_mode");
  fs::path target = dir / "scored.jsonl";
  int status = run_child_and_signal(
      [&](int ready) {
        install_signal_handlers(StopMode::kExit);
        AtomicFileWriter writer(target);
        writer.stream() << std::string(1 << 20, 'x');
        writer.stream().flush();
        ::write(ready, "r", 1);
        for (;;) ::pause();
      },
      {SIGTERM});
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_TRUE(fs::is_empty(dir)) << "a temporary file was left in " << dir;
}

TEST(Signals, FlagModeLetsTheLoopStopThenASecondSignalEndsIt) {
  fs::path dir = test::fresh_scratch_dir("signals", "flag_mode");
  fs::path temp_folder = dir / ".export.partial-1";
  // First signal: the loop sees stop_requested() and reports it, and keeps running.
  int status = run_child_and_signal(
      [&](int ready) {
        install_signal_handlers();
        fs::create_directories(temp_folder / "sub");
        TempPathGuard guard(temp_folder);
        ::write(ready, "r", 1);
        bool told = false;
        for (;;) {
          if (stop_requested() && !told) {
            ::write(ready, "s", 1);
            told = true;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      },
      {SIGINT, SIGINT});
  EXPECT_TRUE(status & 0x10000) << "the child did not see stop_requested()";
  status &= 0xffff;
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGINT);
  EXPECT_FALSE(fs::exists(temp_folder)) << "the registered folder was not removed";
}

TEST(Signals, ReleasedPathsAreKept) {
  fs::path dir = test::fresh_scratch_dir("signals", "released");
  write_file_atomic(dir / "kept.txt", "x");
  {
    TempPathGuard guard(dir / "kept.txt");
    guard.release();
  }
  register_temp_path(dir / "gone.txt");
  write_file_atomic(dir / "gone.txt", "y");
  EXPECT_EQ(remove_registered_temp_paths(), 1);
  EXPECT_TRUE(fs::exists(dir / "kept.txt"));
  EXPECT_FALSE(fs::exists(dir / "gone.txt"));
}

}  // namespace
}  // namespace perpo
