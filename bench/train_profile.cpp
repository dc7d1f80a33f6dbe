// Where the trainer's step spends its time: runs `perpo train`'s own loop (run_training) on a
// config and profiles steps FIRST+1 .. FIRST+COUNT with OpProfile (runtime/op_profile.h):
// operators and wall time per part of Trainer::step (list_tensors, ref_logps, score_list
// (encode_prefix, answer_logps), loss, backward, step_sums, clip, optimizer, read_metrics,
// zero_grad).
//
//   build/bench/bench_train_profile CONFIG FIRST COUNT [key=value ...]
//   e.g. the demo's PerPO arm, offline, from a demo folder:
//   build/bench/bench_train_profile runs/demo/grounding/arms/perpo/run/config.yaml 20 10 \
//       run.dir=/tmp/profile-run train.online_resample_every=0 train.eval_every=0
//
// It also prints the profiled steps' wall time per step without the hooks: the COUNT steps
// before them, unprofiled.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "perpo/config/config_io.h"
#include "perpo/runtime/op_profile.h"
#include "perpo/train/trainer.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s CONFIG FIRST COUNT [key=value ...]\n", argv[0]);
    return 2;
  }
  const std::int64_t first = std::atoll(argv[2]), count = std::atoll(argv[3]);
  if (first <= count || count < 1) {
    std::fprintf(stderr, "FIRST must be > COUNT >= 1 (the COUNT steps before FIRST are timed)\n");
    return 2;
  }
  std::vector<std::string> overrides(argv + 4, argv + argc);
  overrides.push_back("train.max_steps=" + std::to_string(first + count));
  const perpo::Config config = perpo::load_config(argv[1], overrides);

  using Clock = std::chrono::steady_clock;
  std::unique_ptr<perpo::OpProfile> profile;
  Clock::time_point timed_start, profiled_start;
  double unprofiled_ms = 0, profiled_ms = 0;
  perpo::TrainerHooks hooks;
  hooks.on_step = [&](const perpo::StepMetrics& m) {
    if (m.step == first - count) timed_start = Clock::now();
    if (m.step == first) {
      unprofiled_ms =
          std::chrono::duration<double, std::milli>(Clock::now() - timed_start).count() / count;
      profiled_start = Clock::now();
      profile = std::make_unique<perpo::OpProfile>();
    }
    if (m.step == first + count && profile) {
      profile->stop();
      profiled_ms =
          std::chrono::duration<double, std::milli>(Clock::now() - profiled_start).count() / count;
    }
  };
  perpo::run_training(config, {.force = true}, hooks);
  if (!profile) {
    std::fprintf(stderr, "the run stopped before step %lld\n",
                 static_cast<long long>(first + count));
    return 1;
  }
  std::printf(
      "steps %lld..%lld of %s: %.3f ms per step unprofiled (steps %lld..%lld), %.3f "
      "profiled\n%s",
      static_cast<long long>(first + 1), static_cast<long long>(first + count), argv[1],
      unprofiled_ms, static_cast<long long>(first - count + 1), static_cast<long long>(first),
      profiled_ms, profile->table(count).c_str());
  return 0;
}
