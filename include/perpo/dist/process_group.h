// Data parallel on LibTorch's own c10d: the process group of a job started by torchrun
// (`torchrun --no-python --nproc-per-node G perpo train ...`), srun, or any launcher that sets
// RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT.
//
//   perpo::ProcessGroup group = perpo::join_job(config);  // from the environment; same config
//   group.all_reduce_sum(tensor);                          // in place, on every rank
//   if (group.any(stop_requested())) ...                   // a stop seen by one rank, by all
//
// Without those variables (or WORLD_SIZE=1) a ProcessGroup is rank 0 of 1 and every collective is
// a no-op: a single process behaves exactly as before. The rendezvous is c10d's TCPStore on
// MASTER_ADDR:MASTER_PORT (rank 0 serves it); the backend is Gloo on the CPU and NCCL on CUDA
// (distributed.backend auto), with distributed.timeout_s on every collective. A collective that
// fails (a rank died: the connection closes; a rank hangs: the timeout) throws perpo::Error
// naming this rank and the operation, never a silent hang.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "perpo/config/config.h"

namespace perpo {

/// The launcher's variables. `launched` is false when WORLD_SIZE is unset (a plain process).
struct DistEnv {
  bool launched = false;
  int rank = 0;
  int world = 1;
  int local_rank = 0;
  std::string master_addr;
  int master_port = 0;
};

/// Reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. Throws perpo::Error (input) for
/// a partial or malformed set (WORLD_SIZE without RANK, RANK >= WORLD_SIZE, a port out of range).
DistEnv read_dist_env();

class ProcessGroup {
 public:
  /// Rank 0 of 1: every collective is a no-op.
  ProcessGroup();
  ~ProcessGroup();
  ProcessGroup(ProcessGroup&&) noexcept;
  ProcessGroup& operator=(ProcessGroup&&) noexcept;

  /// Joins the job's group (a no-op group when env.world == 1). `device` is this rank's device:
  /// CUDA selects NCCL under backend auto. Throws perpo::Error when the rendezvous or the backend
  /// cannot be set up within distributed.timeout_s.
  static ProcessGroup connect(const DistEnv& env, const DistributedConfig& config,
                              const c10::Device& device);

  int rank() const { return rank_; }
  int world() const { return world_; }
  /// The rank that writes the run's files (rank 0).
  bool writer() const { return rank_ == 0; }
  /// Wall seconds spent in this group's collectives so far (waiting for the other ranks
  /// included: a collective ends when the slowest rank arrives).
  double comm_seconds() const;
  /// After a failed collective: this rank reports its failure through the store, waits
  /// `wait_s` for the others to report theirs, and returns which ranks did not ("rank 1 did
  /// not report: it died or hangs"; "rank 0 (the rendezvous host) is unreachable" when the store
  /// is gone). Never throws.
  std::string failure_report(double wait_s = 2.0) const;
  /// The backend in use: "none" for a single process, else "gloo" or "nccl".
  const std::string& backend() const { return backend_; }

  /// Sums `tensor` over ranks, in place.
  void all_reduce_sum(at::Tensor& tensor) const;
  /// A collective in flight (all_reduce_sum_async). wait() blocks until it has ended (the time
  /// blocked counts in comm_seconds(); the time it ran before does not) and throws perpo::Error
  /// as a blocking collective does. A Work that is never waited for must not outlive its group.
  class Work {
   public:
    Work();
    ~Work();
    Work(Work&&) noexcept;
    Work& operator=(Work&&) noexcept;
    /// Launched and not yet waited for.
    bool pending() const;
    void wait();
    /// When it was launched and when the backend marked it done (after wait(); the end of wait()
    /// where the backend does not say).
    std::chrono::steady_clock::time_point launched() const;
    std::chrono::steady_clock::time_point ended() const;

   private:
    friend class ProcessGroup;
    struct State;
    std::shared_ptr<State> state_;
  };
  /// Starts summing `tensor` over ranks, in place: it must not be touched until wait(). Ranks
  /// must launch their collectives in the same order (Gloo matches them by order).
  Work all_reduce_sum_async(const at::Tensor& tensor) const;
  /// Reduce-scatter: `input` holds world * n elements on every rank; `output` (n) gets elements
  /// [rank * n, (rank + 1) * n) of their sum over ranks.
  void reduce_scatter_sum(at::Tensor& output, const at::Tensor& input) const;
  /// All-gather: `output` (world * n) gets every rank's `input` (n), in rank order.
  void all_gather_into(at::Tensor& output, const at::Tensor& input) const;
  /// Whether the backend has reduce_scatter_sum and all_gather_into (Gloo and NCCL in LibTorch
  /// 2.13; a LibTorch whose Gloo lacks them says no). Probed on the first call with a tiny
  /// reduce-scatter: a collective, every rank must call it. False for a single process.
  bool supports_reduce_scatter() const;
  /// Copies `tensor` of rank `root` into `tensor` of every other rank (same shape and dtype).
  void broadcast(at::Tensor& tensor, int root) const;
  /// True on every rank when `flag` is true on any rank.
  bool any(bool flag) const;
  /// Waits for every rank.
  void barrier() const;
  /// Rank 0 gets every rank's `value` (in rank order) through the store; the other ranks get an
  /// empty list. For results of moderate size (an evaluation's predictions). A single process
  /// gets {value}.
  std::vector<std::string> gather_to_writer(const std::string& value) const;
  /// Every rank gets every rank's `value`, in rank order ({value} in a single process).
  std::vector<std::string> all_gather(const std::string& value) const;
  /// Every rank publishes `value` under `key` through the store and compares it with rank 0's;
  /// returns rank 0's value (this rank's own on a single process). Each rank gets every rank's
  /// value, so a mismatch is seen by all of them. `describe(rank0, mine)` explains a mismatch
  /// (e.g. the config keys that differ); the error names the first rank that differs.
  std::string check_same(
      const std::string& key, const std::string& value,
      const std::function<std::string(const std::string& rank0, const std::string& other)>&
          describe = nullptr) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> gather(const std::string& value, bool everyone) const;
  int rank_ = 0;
  int world_ = 1;
  std::string backend_ = "none";
};

/// A command's group: joins the job described by the environment (read_dist_env) and refuses to
/// start unless every rank has the same config (the keys that differ named). With WORLD_SIZE > 1
/// and run.device "cuda", this rank's device becomes cuda:LOCAL_RANK (config.run.device is set to
/// it). Without the launcher's variables: a single process, the config untouched.
ProcessGroup join_job(Config& config);

/// The part file that rank `rank` of `world` writes beside `output` (".<name>.rank-R-of-W") for
/// rank 0 to merge: data-parallel sample, logps.
std::filesystem::path rank_part_path(const std::filesystem::path& output, int rank, int world);

/// This rank's share of a step's `indices`: every world-th one, starting at `rank` (the order of
/// a single process's step, dealt out like cards: rank r gets indices[r], indices[r + W], ...).
std::vector<std::size_t> rank_share(const std::vector<std::size_t>& indices, int rank, int world);

}  // namespace perpo
