// GradientReducer (dist/gradient_reducer.h) on two ranks of Gloo over 127.0.0.1, one thread each
// in this process: the sums equal the sum of the ranks' gradients; the hooks start the buckets of
// the last backward in bucket order, and buckets whose parameters get no gradient in it (on one
// rank, or in the whole step) are all-reduced after the backward without a deadlock.
#include "perpo/dist/gradient_reducer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <thread>
#include <vector>

#include "dist_job.h"
#include "perpo/dist/process_group.h"

namespace {

// Three parameters of 4 floats, one bucket each (16 bytes): buckets in reverse order c, b, a.
struct Rank {
  at::Tensor a = torch::zeros({4}).requires_grad_(true);
  at::Tensor b = torch::zeros({4}).requires_grad_(true);
  at::Tensor c = torch::zeros({4}).requires_grad_(true);
  std::vector<at::Tensor> params() const { return {a, b, c}; }
  perpo::GradientReducer::Timing timing;
};

// Runs `step(rank, reducer)` on ranks 0 and 1, each in its own thread with its own group.
void on_two_ranks(const std::function<void(int, Rank&, perpo::GradientReducer&)>& step,
                  Rank (&ranks)[2]) {
  const int port = perpo::test::free_port();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(2);
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      try {
        perpo::DistEnv env;
        env.launched = true;
        env.rank = r;
        env.world = 2;
        env.master_addr = "127.0.0.1";
        env.master_port = port;
        perpo::DistributedConfig config;
        config.backend = "gloo";
        config.timeout_s = 30;
        const perpo::ProcessGroup group =
            perpo::ProcessGroup::connect(env, config, c10::Device(c10::kCPU));
        Rank& rank = ranks[r];
        perpo::GradientReducer reducer(group, rank.params(), /*bucket_bytes=*/16);
        EXPECT_EQ(reducer.bucket_count(), 3u);
        step(r, rank, reducer);
        rank.timing = reducer.last();
        group.barrier();
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
}

at::Tensor values(std::initializer_list<float> v) { return torch::tensor(std::vector<float>(v)); }

TEST(GradientReducer, SumsOverRanksAndLaunchesTheLastBackwardsBucketsInOrder) {
  Rank ranks[2];
  on_two_ranks(
      [](int r, Rank& rank, perpo::GradientReducer& reducer) {
        const float k = static_cast<float>(r + 1);
        // First backward: every parameter; gradients k, 2k, 3k.
        ((rank.a * k).sum() + (rank.b * 2 * k).sum() + (rank.c * 3 * k).sum()).backward();
        reducer.arm();  // last backward: adds 1 to each
        (rank.a.sum() + rank.b.sum() + rank.c.sum()).backward();
        reducer.finish();
      },
      ranks);
  for (const Rank& rank : ranks) {
    // a: (1 + 1) + (2 + 1) = 5; b: (2 + 1) + (4 + 1) = 8; c: (3 + 1) + (6 + 1) = 11.
    EXPECT_TRUE(torch::equal(rank.a.grad(), torch::full({4}, 5.0f)));
    EXPECT_TRUE(torch::equal(rank.b.grad(), torch::full({4}, 8.0f)));
    EXPECT_TRUE(torch::equal(rank.c.grad(), torch::full({4}, 11.0f)));
    EXPECT_EQ(rank.timing.buckets, 3);
    EXPECT_EQ(rank.timing.launched_in_backward, 3);  // every bucket by the hooks
  }
}

TEST(GradientReducer, ParametersWithoutAGradientInTheLastBackwardWaitForItsEnd) {
  Rank ranks[2];
  on_two_ranks(
      [](int r, Rank& rank, perpo::GradientReducer& reducer) {
        if (r == 0) {
          (rank.a.sum() + rank.b.sum() + rank.c.sum()).backward();
          reducer.arm();
          (rank.a * values({1, 2, 3, 4})).sum().backward();  // a only: bucket c holds all back
        } else {
          reducer.arm();  // one backward, without b: buckets c by the hook, b and a after it
          (rank.a.sum() + rank.c.sum()).backward();
        }
        reducer.finish();
      },
      ranks);
  EXPECT_EQ(ranks[0].timing.launched_in_backward, 0);
  EXPECT_EQ(ranks[1].timing.launched_in_backward, 1);
  for (const Rank& rank : ranks) {
    // a: rank 0 (1 + [1 2 3 4]) + rank 1 1; b: rank 0's 1 (rank 1's zeros); c: 1 + 1.
    EXPECT_TRUE(torch::equal(rank.a.grad(), values({3, 4, 5, 6})));
    EXPECT_TRUE(torch::equal(rank.b.grad(), torch::ones({4})));
    EXPECT_TRUE(torch::equal(rank.c.grad(), torch::full({4}, 2.0f)));
  }
}

TEST(GradientReducer, ARankWithoutBackwardTakesPartAfterTheOthersHooks) {
  Rank ranks[2];
  on_two_ranks(
      [](int r, Rank& rank, perpo::GradientReducer& reducer) {
        if (r == 0) {  // every bucket started by the hooks
          reducer.arm();
          (rank.a.sum() + rank.b.sum() + rank.c.sum()).backward();
        }  // rank 1: no list to train (all dropped), no gradient at all
        reducer.finish();
      },
      ranks);
  EXPECT_EQ(ranks[0].timing.launched_in_backward, 3);
  EXPECT_EQ(ranks[1].timing.launched_in_backward, 0);
  for (const Rank& rank : ranks) {
    for (const at::Tensor& p : rank.params()) EXPECT_TRUE(torch::equal(p.grad(), torch::ones({4})));
  }
}

TEST(GradientReducer, WithoutOverlapEveryBucketWaitsForTheEnd) {
  const int port = perpo::test::free_port();
  Rank ranks[2];
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      perpo::DistEnv env;
      env.launched = true;
      env.rank = r;
      env.world = 2;
      env.master_addr = "127.0.0.1";
      env.master_port = port;
      perpo::DistributedConfig config;
      config.backend = "gloo";
      config.timeout_s = 30;
      const perpo::ProcessGroup group =
          perpo::ProcessGroup::connect(env, config, c10::Device(c10::kCPU));
      Rank& rank = ranks[r];
      perpo::GradientReducer reducer(group, rank.params(), 16, /*overlap=*/false);
      reducer.arm();
      (rank.a.sum() + rank.b.sum() * (r + 1) + rank.c.sum()).backward();
      reducer.finish();
      rank.timing = reducer.last();
    });
  }
  for (auto& t : threads) t.join();
  for (const Rank& rank : ranks) {
    EXPECT_EQ(rank.timing.launched_in_backward, 0);
    EXPECT_EQ(rank.timing.hidden_s, 0);
    EXPECT_TRUE(torch::equal(rank.b.grad(), torch::full({4}, 3.0f)));
  }
}

}  // namespace
