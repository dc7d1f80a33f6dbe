#include "perpo/runtime/runtime.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>

#include "perpo/core/error.h"
#include "perpo/core/log.h"

namespace perpo {

std::mt19937_64& global_rng() {
  static std::mt19937_64 engine(0);
  return engine;
}

void seed_all(std::uint64_t seed) {
  global_rng().seed(seed);
  std::srand(static_cast<unsigned>(seed));
  torch::manual_seed(seed);  // seeds CUDA generators too when CUDA is present
}

c10::Device parse_device(const std::string& text) {
  if (text == "cpu") return c10::Device(c10::kCPU);
  if (text == "cuda" || text.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available()) {
      throw input_error("device '", text, "' asked for, but this LibTorch sees no CUDA device")
          .hint("use run.device=cpu, or build perpo against a CUDA LibTorch");
    }
    try {
      c10::Device device(text);
      if (device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count())) {
        throw input_error("device '", text, "' does not exist: ", torch::cuda::device_count(),
                          " CUDA device(s) visible");
      }
      return device;
    } catch (const c10::Error&) {
      throw input_error("cannot parse device '", text, "'").hint("use cpu, cuda or cuda:N");
    }
  }
  throw input_error("unknown device '", text, "'").hint("use cpu, cuda or cuda:N");
}

c10::ScalarType parse_dtype(const std::string& text) {
  if (text == "fp32" || text == "float32" || text == "float") return c10::kFloat;
  if (text == "bf16" || text == "bfloat16") return c10::kBFloat16;
  if (text == "fp16" || text == "float16" || text == "half") return c10::kHalf;
  throw input_error("unknown dtype '", text, "'").hint("use fp32, bf16 or fp16");
}

int threads_for_load(int cores, double busy_cores) {
  // A core counts as taken when other work keeps it more than half busy: one more thread there
  // would wait for it at every barrier.
  const int taken = static_cast<int>(std::lround(std::max(0.0, busy_cores)));
  return std::clamp(cores - taken, 1, std::max(1, cores));
}

namespace {

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// Busy and total jiffies of all CPUs from /proc/stat's first line; nullopt when unreadable.
std::optional<std::pair<double, double>> cpu_jiffies() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) ||
      cpu != "cpu") {
    return std::nullopt;
  }
  const double busy = user + nice + system + irq + softirq + steal;
  return std::make_pair(busy, busy + idle + iowait);
}

}  // namespace

double busy_cores_elsewhere(std::chrono::milliseconds window) {
  const auto before = cpu_jiffies();
  std::this_thread::sleep_for(window);
  const auto after = cpu_jiffies();
  if (!before || !after || after->second <= before->second) return 0.0;
  const double share = (after->first - before->first) / (after->second - before->second);
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  return share * static_cast<double>(online > 0 ? online : 1);
}

int set_threads(int threads) {
  PERPO_CHECK_INPUT(threads >= 0, "run.threads must be >= 0, got ", threads);
  if (threads > 0) {
    at::set_num_threads(threads);
    return at::get_num_threads();
  }
  const char* omp = std::getenv("OMP_NUM_THREADS");
  if (omp != nullptr && *omp != '\0') return at::get_num_threads();  // the user's choice
  // auto: the cores this process may use that other work leaves free (measured over 100 ms),
  // at least one. LibTorch's default (every core) collapses when another process shares them:
  // its OpenMP threads spin at each barrier waiting for a thread that is not running
  // (docs/benchmarks.md: 2 threads beside a busy core ran at 1/2 to 1/5 of 1 thread).
  const int cores = available_cores();
  const double busy = busy_cores_elsewhere(std::chrono::milliseconds(100));
  const int chosen = threads_for_load(cores, busy);
  if (chosen != at::get_num_threads()) at::set_num_threads(chosen);
  PERPO_LOG_INFO("threads: ", chosen, " (auto: ", cores, " core(s), ", busy,
                 " busy with other work)");
  return at::get_num_threads();
}

std::string runtime_summary() {
  std::ostringstream out;
  out << "LibTorch " << TORCH_VERSION << ", CUDA: ";
  if (torch::cuda::is_available()) {
    out << "yes (" << torch::cuda::device_count() << " device(s))";
  } else {
    out << "no";
  }
  out << ", threads: " << at::get_num_threads();
  return out.str();
}

}  // namespace perpo
