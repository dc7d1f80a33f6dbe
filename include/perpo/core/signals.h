// SIGINT / SIGTERM handling and the registry of temporary paths that must not outlive perpo.
//
//   perpo::install_signal_handlers(perpo::StopMode::kExit);  // main(): Ctrl-C removes temp files
//                                                            // and ends perpo at once
//   perpo::install_signal_handlers();                        // a long loop (train) that polls:
//   while (...) { step(); if (perpo::stop_requested()) { save(); break; } }
//
//   perpo::TempPathGuard guard(temp);   // what AtomicFileWriter does with its temporary file
//   ...                                 // removed if a signal ends perpo meanwhile
//   guard.release();                    // after the rename: nothing left to remove
//
// How it works: the handlers block SIGINT and SIGTERM in the calling thread (and so in every
// thread started after it: call this first thing in main) and one watcher thread waits for them
// with sigwait, so the clean-up runs as ordinary code, not inside a signal handler.
//   kFlag: the first signal sets stop_requested() (the loop finishes its step and stops); a second
//          signal removes the registered paths and ends the process.
//   kExit: the first signal removes the registered paths and ends the process.
// The process ends by the signal itself (default action), so a shell sees 130 for Ctrl-C.
#pragma once

#include <filesystem>

namespace perpo {

enum class StopMode {
  kFlag,  // first signal: stop_requested() becomes true; second: clean up and terminate
  kExit,  // first signal: clean up and terminate
};

/// Installs the handlers (once per process; later calls only change the mode).
void install_signal_handlers(StopMode mode = StopMode::kFlag);

/// True once SIGINT or SIGTERM arrived (kFlag mode), or after request_stop().
bool stop_requested();

/// Sets the stop flag as a signal would (for tests and for code that stops itself).
void request_stop();

/// Temporary files or folders removed when a signal ends perpo (folders recursively).
void register_temp_path(const std::filesystem::path& path);
void unregister_temp_path(const std::filesystem::path& path);

/// Removes every registered path now (what the signal clean-up does); returns how many existed.
int remove_registered_temp_paths();

/// Registers a path for its lifetime; release() keeps the path and unregisters it.
class TempPathGuard {
 public:
  explicit TempPathGuard(std::filesystem::path path) : path_(std::move(path)) {
    register_temp_path(path_);
  }
  ~TempPathGuard() { release(); }
  TempPathGuard(const TempPathGuard&) = delete;
  TempPathGuard& operator=(const TempPathGuard&) = delete;
  void release() {
    if (!path_.empty()) unregister_temp_path(path_);
    path_.clear();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace perpo
