// Advisory locks on outputs, so two perpo processes never write one run folder or one output file
// at the same time (interfaces.md: "a run folder or output file in use by another perpo process
// is refused, the holder's pid in the message").
//
//   perpo::OutputLock lock = perpo::OutputLock::folder(config.run.dir);  // held while in scope
//   perpo::OutputLock lock = perpo::OutputLock::file("scored.jsonl");
//
// The lock is flock(2) on a small file: <folder>/.perpo-lock for a folder, .<name>.perpo-lock
// beside a file. The kernel drops it when the process ends, however it ends (SIGKILL included), so
// a lock never outlives its holder. The holder writes its pid into the file; a second process
// that finds the lock taken is refused (perpo::Error, input: exit 2) with that pid. The lock file
// is removed when the lock is released; a process that locked a file just removed by its holder
// notices (the path no longer names the file it locked) and tries again.
// Outputs that are not regular files (/dev/null, a FIFO, /dev/stdout) are not locked.
#pragma once

#include <filesystem>
#include <string>

namespace perpo {

class OutputLock {
 public:
  OutputLock() = default;
  /// Locks the folder `dir` (created if missing). `what` names it in messages ("run folder").
  static OutputLock folder(const std::filesystem::path& dir, const std::string& what = "folder");
  /// Locks the output file `file` (its folder is created if missing), or a folder that is
  /// replaced whole (the lock file lies beside it).
  static OutputLock file(const std::filesystem::path& file,
                         const std::string& what = "output file");

  ~OutputLock();
  OutputLock(OutputLock&& other) noexcept;
  OutputLock& operator=(OutputLock&& other) noexcept;
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

  bool held() const { return fd_ >= 0; }
  const std::filesystem::path& lock_path() const { return lock_path_; }
  /// Releases the lock now (removes the lock file).
  void release();

 private:
  static OutputLock acquire(const std::filesystem::path& lock_path,
                            const std::filesystem::path& target, const std::string& what);

  std::filesystem::path lock_path_;
  int fd_ = -1;
};

}  // namespace perpo
