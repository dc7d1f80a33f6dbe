// SIGINT / SIGTERM: a watcher thread waits for them with sigwait (see signals.h).
#include "perpo/core/signals.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace perpo {
namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_mode{static_cast<int>(StopMode::kFlag)};
std::once_flag g_installed;

std::mutex& registry_mutex() {
  static std::mutex mutex;
  return mutex;
}
std::vector<fs::path>& registry() {
  static std::vector<fs::path> paths;
  return paths;
}

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

/// Removes the registered paths and ends the process by `sig` itself (its default action).
[[noreturn]] void clean_up_and_die(int sig) {
  const int removed = remove_registered_temp_paths();
  if (removed > 0) {
    std::fprintf(stderr, "perpo: interrupted; removed %d temporary file(s)\n", removed);
  } else {
    std::fputs("perpo: interrupted\n", stderr);
  }
  std::fflush(stderr);
  ::signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  raise(sig);
  std::_Exit(128 + sig);  // not reached: the default action of SIGINT / SIGTERM ends the process
}

void watch_signals() {
  const sigset_t set = stop_signals();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    const bool first = !g_stop.exchange(true);
    if (first && g_mode.load() == static_cast<int>(StopMode::kFlag)) {
      std::fputs("perpo: stopping after the current step (send the signal again to stop at once)\n",
                 stderr);
      continue;
    }
    clean_up_and_die(sig);
  }
}

}  // namespace

void install_signal_handlers(StopMode mode) {
  g_mode.store(static_cast<int>(mode));
  std::call_once(g_installed, [] {
    const sigset_t set = stop_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread(watch_signals).detach();
  });
}

bool stop_requested() { return g_stop.load(); }

void request_stop() { g_stop.store(true); }

void register_temp_path(const fs::path& path) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry().push_back(path);
}

void unregister_temp_path(const fs::path& path) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto& paths = registry();
  auto it = std::find(paths.begin(), paths.end(), path);
  if (it != paths.end()) paths.erase(it);
}

int remove_registered_temp_paths() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  int removed = 0;
  for (const fs::path& path : registry()) {
    std::error_code error;
    if (fs::remove_all(path, error) > 0) ++removed;
  }
  registry().clear();
  return removed;
}

}  // namespace perpo
