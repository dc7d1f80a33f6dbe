// The c10d process group (process_group.h): TCPStore rendezvous, Gloo or NCCL backend.
#include "perpo/dist/process_group.h"

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <thread>

#include "perpo/config/config_io.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"
#include "perpo/runtime/runtime.h"

namespace perpo {

namespace {

// An integer environment variable; `fallback` when unset.
int env_int(const char* name, int fallback, int low, int high) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < low || value > high) {
    throw input_error("environment variable ", name, "='", text, "' must be an integer in [", low,
                      ", ", high, "]")
        .hint(
            "launch with torchrun, srun, or set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and "
            "MASTER_PORT yourself");
  }
  return static_cast<int>(value);
}

std::string message_of(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

}  // namespace

DistEnv read_dist_env() {
  DistEnv env;
  const char* world = std::getenv("WORLD_SIZE");
  if (world == nullptr || *world == '\0') return env;
  env.launched = true;
  env.world = env_int("WORLD_SIZE", 1, 1, 1 << 20);
  const char* rank = std::getenv("RANK");
  if (env.world > 1 && (rank == nullptr || *rank == '\0')) {
    throw input_error("WORLD_SIZE is ", env.world, " but RANK is not set")
        .hint("launch with torchrun or srun, or set RANK (0..WORLD_SIZE-1) for each process");
  }
  env.rank = env_int("RANK", 0, 0, env.world - 1);
  env.local_rank = env_int("LOCAL_RANK", env.rank, 0, 1 << 20);
  if (env.world > 1) {
    const char* addr = std::getenv("MASTER_ADDR");
    env.master_addr = addr != nullptr && *addr != '\0' ? addr : "";
    if (env.master_addr.empty()) {
      throw input_error("WORLD_SIZE is ", env.world, " but MASTER_ADDR is not set")
          .hint("set MASTER_ADDR to the host of rank 0 (127.0.0.1 on one machine)");
    }
    if (std::getenv("MASTER_PORT") == nullptr) {
      throw input_error("WORLD_SIZE is ", env.world, " but MASTER_PORT is not set")
          .hint("set MASTER_PORT to a free TCP port on the host of rank 0, e.g. 29500");
    }
    env.master_port = env_int("MASTER_PORT", 0, 1, 65535);
  }
  return env;
}

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  c10::Device device{c10::kCPU};
  std::chrono::milliseconds timeout{0};
  double seconds = 0;                  // in collectives
  int gathers = 0;                     // gather_to_writer calls so far (their store keys)
  std::optional<bool> reduce_scatter;  // supports_reduce_scatter(), once probed
};

ProcessGroup::ProcessGroup() = default;
ProcessGroup::~ProcessGroup() = default;
ProcessGroup::ProcessGroup(ProcessGroup&&) noexcept = default;
ProcessGroup& ProcessGroup::operator=(ProcessGroup&&) noexcept = default;

ProcessGroup ProcessGroup::connect(const DistEnv& env, const DistributedConfig& config,
                                   const c10::Device& device) {
  ProcessGroup group;
  if (env.world <= 1) return group;
  std::string backend = config.backend;
  if (backend == "auto") backend = device.is_cuda() ? "nccl" : "gloo";
  const std::chrono::milliseconds timeout(static_cast<std::int64_t>(config.timeout_s) * 1000);
  // A write to the socket of a rank that died raises SIGPIPE, whose default action ends this
  // process without a word (Python, torchrun's usual host, ignores it at start): ignored, the
  // write fails, and the failure is reported as another rank's death.
  ::signal(SIGPIPE, SIG_IGN);
  auto impl = std::make_unique<Impl>();
  impl->device = device;
  impl->timeout = timeout;
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(env.master_port);
    options.isServer = env.rank == 0;
    options.numWorkers = env.world;
    options.waitWorkers = true;
    options.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
    impl->store = c10::make_intrusive<c10d::PrefixStore>("perpo", tcp);
  } catch (const std::exception& e) {
    throw runtime_error("rank ", env.rank, " of ", env.world, ": no rendezvous with rank 0 at ",
                        env.master_addr, ":", env.master_port, " within ", config.timeout_s,
                        " s: ", message_of(e))
        .hint(
            "check MASTER_ADDR / MASTER_PORT (rank 0's host and a free port) and that every "
            "rank was started; distributed.timeout_s sets the wait");
  }
  try {
    if (backend == "gloo") {
#ifdef USE_C10D_GLOO
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      // One device on the interface that reaches MASTER_ADDR's host (GLOO_SOCKET_IFNAME wins, as
      // in PyTorch); the loopback for a job on one machine.
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname != nullptr && *ifname != '\0') {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      impl->backend =
          c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world, options);
#else
      throw input_error("distributed.backend gloo: this LibTorch was built without Gloo");
#endif
    } else {
#ifdef USE_C10D_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      impl->backend =
          c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world, options);
#else
      throw input_error("distributed.backend nccl: this LibTorch was built without NCCL")
          .hint("use a CUDA LibTorch, or distributed.backend=gloo");
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw runtime_error("rank ", env.rank, " of ", env.world, ": the ", backend,
                        " process group could not be set up: ", message_of(e));
  }
  group.impl_ = std::move(impl);
  group.rank_ = env.rank;
  group.world_ = env.world;
  group.backend_ = backend;
  return group;
}

namespace {

template <typename Run>
void collective(const ProcessGroup& group, double& seconds, const std::string& what, Run&& run) {
  const auto start = std::chrono::steady_clock::now();
  try {
    run();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } catch (const std::exception& e) {
    const std::string report = group.failure_report();
    throw runtime_error("rank ", group.rank(), " of ", group.world(), ": ", what,
                        " failed: ", report.empty() ? "" : report + "; ", message_of(e))
        .hint(
            "another rank stopped, died or hangs (see its output; a dead rank closes its "
            "connections, a hung one trips distributed.timeout_s)");
  }
}

}  // namespace

std::string ProcessGroup::failure_report(double wait_s) const {
  if (!impl_) return "";
  try {
    impl_->store->set("failed/" + std::to_string(rank_), std::vector<std::uint8_t>{1});
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<std::int64_t>(wait_s * 1000));
    std::vector<int> silent;
    do {
      silent.clear();
      for (int r = 0; r < world_; ++r) {
        if (!impl_->store->check({"failed/" + std::to_string(r)})) silent.push_back(r);
      }
      if (silent.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (std::chrono::steady_clock::now() < deadline);
    if (silent.empty()) return "";
    std::string ranks;
    for (int r : silent) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
    return (silent.size() == 1 ? "rank " : "ranks ") + ranks +
           " did not report this failure within " + std::to_string(static_cast<int>(wait_s)) +
           " s: died or hangs";
  } catch (const std::exception&) {
    return rank_ == 0 ? std::string() : "rank 0 (the rendezvous host) is unreachable: it died";
  }
}

double ProcessGroup::comm_seconds() const { return impl_ ? impl_->seconds : 0.0; }

void ProcessGroup::all_reduce_sum(at::Tensor& tensor) const {
  if (!impl_) return;
  collective(*this, impl_->seconds, "all-reduce", [&] {
    std::vector<at::Tensor> tensors{tensor};
    impl_->backend->allreduce(tensors)->wait();
  });
}

using Clock = std::chrono::steady_clock;

struct ProcessGroup::Work::State {
  const ProcessGroup* group = nullptr;
  c10::intrusive_ptr<c10d::Work> work;
  at::Tensor tensor;  // kept alive until the collective ends
  Clock::time_point launched;
  // Set by the backend's completion callback (its thread), in steady-clock nanoseconds; 0 until
  // then. Its own object, so that the callback does not keep the State alive.
  std::shared_ptr<std::atomic<std::int64_t>> ended_ns =
      std::make_shared<std::atomic<std::int64_t>>(0);
  Clock::time_point waited;
  bool pending = false;
};

ProcessGroup::Work::Work() = default;
ProcessGroup::Work::~Work() = default;
ProcessGroup::Work::Work(Work&&) noexcept = default;
ProcessGroup::Work& ProcessGroup::Work::operator=(Work&&) noexcept = default;

bool ProcessGroup::Work::pending() const { return state_ && state_->pending; }

void ProcessGroup::Work::wait() {
  if (!pending()) return;
  State& state = *state_;
  state.pending = false;
  collective(*state.group, state.group->impl_->seconds, "all-reduce", [&] { state.work->wait(); });
  state.waited = Clock::now();
  state.tensor = at::Tensor();
}

Clock::time_point ProcessGroup::Work::launched() const {
  return state_ ? state_->launched : Clock::time_point();
}

Clock::time_point ProcessGroup::Work::ended() const {
  if (!state_) return Clock::time_point();
  const std::int64_t ns = state_->ended_ns->load(std::memory_order_acquire);
  if (ns == 0) return state_->waited;
  return std::min(state_->waited, Clock::time_point(Clock::duration(ns)));
}

ProcessGroup::Work ProcessGroup::all_reduce_sum_async(const at::Tensor& tensor) const {
  Work handle;
  if (!impl_) return handle;
  auto state = std::make_shared<Work::State>();
  state->group = this;
  state->tensor = tensor;
  state->launched = Clock::now();
  double launching = 0;  // launching is not waiting: not counted in comm_seconds
  collective(*this, launching, "all-reduce", [&] {
    std::vector<at::Tensor> tensors{tensor};
    state->work = impl_->backend->allreduce(tensors);
  });
  try {  // the moment it ends, where the backend tells (Gloo and NCCL do)
    state->work->getFuture()->addCallback(
        [ended = state->ended_ns](c10::ivalue::Future&) {
          ended->store(Clock::now().time_since_epoch().count(), std::memory_order_release);
        },
        /*uses_future=*/false);
  } catch (const std::exception&) {
  }
  state->pending = true;
  handle.state_ = std::move(state);
  return handle;
}

void ProcessGroup::reduce_scatter_sum(at::Tensor& output, const at::Tensor& input) const {
  if (!impl_) {
    output.copy_(input);
    return;
  }
  collective(*this, impl_->seconds, "reduce-scatter", [&] {
    at::Tensor in = input;
    impl_->backend->_reduce_scatter_base(output, in)->wait();
  });
}

void ProcessGroup::all_gather_into(at::Tensor& output, const at::Tensor& input) const {
  if (!impl_) {
    output.copy_(input);
    return;
  }
  collective(*this, impl_->seconds, "all-gather", [&] {
    at::Tensor in = input;
    impl_->backend->_allgather_base(output, in)->wait();
  });
}

bool ProcessGroup::supports_reduce_scatter() const {
  if (!impl_) return false;
  if (!impl_->reduce_scatter) {
    // A backend without it refuses at the call, before any communication, on every rank alike.
    at::Tensor input = torch::ones({world_}, torch::dtype(torch::kFloat32).device(impl_->device));
    at::Tensor output = torch::zeros({1}, input.options());
    try {
      impl_->backend->_reduce_scatter_base(output, input)->wait();
      impl_->reduce_scatter = output.item<float>() == static_cast<float>(world_);
    } catch (const c10::Error& e) {
      PERPO_LOG_INFO("the ", backend_,
                     " backend has no reduce-scatter: ", e.what_without_backtrace());
      impl_->reduce_scatter = false;
    }
  }
  return *impl_->reduce_scatter;
}

void ProcessGroup::broadcast(at::Tensor& tensor, int root) const {
  if (!impl_) return;
  collective(*this, impl_->seconds, "broadcast", [&] {
    std::vector<at::Tensor> tensors{tensor};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    impl_->backend->broadcast(tensors, options)->wait();
  });
}

bool ProcessGroup::any(bool flag) const {
  if (!impl_) return flag;
  at::Tensor value =
      torch::full({1}, flag ? 1.0f : 0.0f, torch::dtype(torch::kFloat32).device(impl_->device));
  all_reduce_sum(value);
  return value.item<float>() > 0;
}

void ProcessGroup::barrier() const {
  if (!impl_) return;
  collective(*this, impl_->seconds, "barrier", [&] {
    at::Tensor value = torch::zeros({1}, torch::dtype(torch::kFloat32).device(impl_->device));
    std::vector<at::Tensor> tensors{value};
    impl_->backend->allreduce(tensors)->wait();
  });
}

std::vector<std::string> ProcessGroup::gather_to_writer(const std::string& value) const {
  return gather(value, /*everyone=*/false);
}

std::vector<std::string> ProcessGroup::all_gather(const std::string& value) const {
  return gather(value, /*everyone=*/true);
}

std::vector<std::string> ProcessGroup::gather(const std::string& value, bool everyone) const {
  if (!impl_) return {value};
  const std::string key = "gather/" + std::to_string(impl_->gathers++) + "/";
  std::vector<std::string> values;
  collective(*this, impl_->seconds, "gathering the ranks' results", [&] {
    impl_->store->set(key + std::to_string(rank_),
                      std::vector<std::uint8_t>(value.begin(), value.end()));
    if (!everyone && rank_ != 0) return;
    for (int r = 0; r < world_; ++r) {
      const std::vector<std::uint8_t> bytes = impl_->store->get(key + std::to_string(r));
      values.emplace_back(bytes.begin(), bytes.end());
    }
  });
  barrier();  // every value has been read: each rank removes its own
  collective(*this, impl_->seconds, "gathering the ranks' results",
             [&] { impl_->store->deleteKey(key + std::to_string(rank_)); });
  return values;
}

std::string ProcessGroup::check_same(
    const std::string& key, const std::string& value,
    const std::function<std::string(const std::string&, const std::string&)>& describe) const {
  if (!impl_) return value;
  std::vector<std::string> values(static_cast<std::size_t>(world_));
  collective(*this, impl_->seconds, "the start-up check of the ranks' " + key, [&] {
    impl_->store->set(key + "/" + std::to_string(rank_),
                      std::vector<std::uint8_t>(value.begin(), value.end()));
    for (int r = 0; r < world_; ++r) {
      const std::vector<std::uint8_t> bytes = impl_->store->get(key + "/" + std::to_string(r));
      values[static_cast<std::size_t>(r)].assign(bytes.begin(), bytes.end());
    }
  });
  for (int r = 1; r < world_; ++r) {
    if (values[static_cast<std::size_t>(r)] == values[0]) continue;
    std::string why = describe ? describe(values[0], values[static_cast<std::size_t>(r)]) : "";
    throw input_error("rank ", r, "'s ", key, " differs from rank 0's", why.empty() ? "" : ": ",
                      why)
        .hint("start every rank with the same config file and overrides");
  }
  return values[0];
}

ProcessGroup join_job(Config& config) {
  const DistEnv env = read_dist_env();
  if (env.world <= 1) return ProcessGroup();
  c10::Device device = parse_device(config.run.device);
  if (device.is_cuda() && !device.has_index()) {
    device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  }
  ProcessGroup group = ProcessGroup::connect(env, config.distributed, device);
  group.check_same("config", dump_config(config), [](const std::string& a, const std::string& b) {
    Config first, other;
    merge_yaml(first, a, "rank 0's config");
    merge_yaml(other, b, "the other rank's config");
    const auto x = flatten_config(first), y = flatten_config(other);
    std::string keys;
    for (const auto& [key, value] : x) {
      const auto it = y.find(key);
      if (it != y.end() && it->second == value) continue;
      keys += (keys.empty() ? "" : "; ") + key + " = " + value + " on rank 0, " +
              (it == y.end() ? std::string("(absent)") : it->second) + " there";
    }
    return keys;
  });
  if (device.is_cuda()) config.run.device = device.str();
  PERPO_LOG_INFO("data parallel: rank ", group.rank(), " of ", group.world(), " (", group.backend(),
                 ", rendezvous ", env.master_addr, ":", env.master_port, ")");
  return group;
}

std::filesystem::path rank_part_path(const std::filesystem::path& output, int rank, int world) {
  return output.parent_path() / ("." + output.filename().string() + ".rank-" +
                                 std::to_string(rank) + "-of-" + std::to_string(world));
}

std::vector<std::size_t> rank_share(const std::vector<std::size_t>& indices, int rank, int world) {
  std::vector<std::size_t> mine;
  for (std::size_t i = static_cast<std::size_t>(rank); i < indices.size();
       i += static_cast<std::size_t>(world)) {
    mine.push_back(indices[i]);
  }
  return mine;
}

}  // namespace perpo
