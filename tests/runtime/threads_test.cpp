// run.threads: 0 = auto, the cores that other work leaves free (runtime.h set_threads).
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "perpo/runtime/runtime.h"
#include "test_util.h"

namespace perpo {
namespace {

TEST(Threads, AutoLeavesTheCoresOtherWorkKeepsBusy) {
  EXPECT_EQ(threads_for_load(2, 0.0), 2);
  EXPECT_EQ(threads_for_load(2, 0.4), 2);  // a core less than half busy is free
  EXPECT_EQ(threads_for_load(2, 0.6), 1);
  EXPECT_EQ(threads_for_load(2, 1.0), 1);  // the demo's other stage, a build, a busy loop
  EXPECT_EQ(threads_for_load(2, 2.0), 1);  // never fewer than one
  EXPECT_EQ(threads_for_load(2, 7.5), 1);
  EXPECT_EQ(threads_for_load(8, 2.6), 5);
  EXPECT_EQ(threads_for_load(1, 0.0), 1);
  EXPECT_EQ(threads_for_load(4, -0.1), 4);  // a clock step backwards is no load
}

TEST(Threads, ExplicitCountsAreSetAndOmpNumThreadsWinsOverAuto) {
  EXPECT_EQ(set_threads(1), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  // ctest runs every test with OMP_NUM_THREADS=1: auto keeps what the user's variable set.
  ASSERT_EQ(setenv("OMP_NUM_THREADS", "1", 1), 0);
  at::set_num_threads(1);
  EXPECT_EQ(set_threads(0), 1);
  // Without it auto measures: between 1 and the cores, whatever the machine is doing.
  ASSERT_EQ(unsetenv("OMP_NUM_THREADS"), 0);
  const int chosen = set_threads(0);
  EXPECT_GE(chosen, 1);
  EXPECT_LE(chosen, 1024);
  EXPECT_EQ(at::get_num_threads(), chosen);
  ASSERT_EQ(setenv("OMP_NUM_THREADS", "1", 1), 0);
  set_threads(1);
  const std::string message = test::error_of([] { set_threads(-1); });
  EXPECT_NE(message.find("run.threads must be >= 0, got -1"), std::string::npos) << message;
}

}  // namespace
}  // namespace perpo
