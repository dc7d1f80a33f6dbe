// Data-parallel jobs of the perpo executable for tests: W processes started the way torchrun
// starts them (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1, a free MASTER_PORT).
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "run_perpo.h"

namespace perpo::test {

inline std::string read_file_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A TCP port nobody listens on now (the kernel's pick for port 0).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct Rank {
  pid_t pid = -1;
  std::filesystem::path log;
};

// Starts `world` ranks of `perpo <args>` (rank r's extra arguments in per_rank[r], if any).
inline std::vector<Rank> start_job(int world, const std::vector<std::string>& args,
                                   const std::filesystem::path& logs,
                                   const std::vector<std::vector<std::string>>& per_rank = {}) {
  const std::string port = std::to_string(free_port());
  std::vector<Rank> ranks;
  for (int r = 0; r < world; ++r) {
    std::vector<std::string> all = args;
    if (static_cast<std::size_t>(r) < per_rank.size()) {
      all.insert(all.end(), per_rank[r].begin(), per_rank[r].end());
    }
    Rank rank;
    rank.log = logs / ("rank" + std::to_string(r) + ".log");
    rank.pid = spawn_perpo(
        all, rank.log.string(),
        {"RANK=" + std::to_string(r), "WORLD_SIZE=" + std::to_string(world),
         "LOCAL_RANK=" + std::to_string(r), "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + port});
    EXPECT_GT(rank.pid, 0);
    ranks.push_back(rank);
  }
  return ranks;
}

// Waits for a rank; its exit code (-1 when killed by a signal).
inline int wait_rank(const Rank& rank) {
  int status = 0;
  if (waitpid(rank.pid, &status, 0) != rank.pid) return -2;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  std::cerr << "rank process " << rank.pid << " ended by signal " << WTERMSIG(status) << "\n";
  return -1;
}

// Runs a job to its end; every rank must exit 0.
inline void run_job(int world, const std::vector<std::string>& args,
                    const std::filesystem::path& logs) {
  std::filesystem::create_directories(logs);
  const std::vector<Rank> ranks = start_job(world, args, logs);
  for (const Rank& rank : ranks) {
    ASSERT_EQ(wait_rank(rank), 0) << read_file_text(rank.log);
  }
}

}  // namespace perpo::test
