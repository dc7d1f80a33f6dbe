// Output-path rules: what perpo may write, checked before any work starts (interfaces.md,
// "Outputs never destroy inputs"). Every command calls one of these on each output it names.
//
//   perpo::OutputPolicy policy{{checkpoint_dir}, force};       // inputs of the command, --force
//   perpo::prepare_output_dir(out_dir, policy);                // a folder the command fills
//   perpo::check_output_file("scored.jsonl", {{input_file}});  // a single output file
//
// Output folders:
//   - absent: created (with missing parents);
//   - empty, or holding perpo's marker file (.perpo-output) of the same kind (the marker says
//     which kind of output wrote it: a run folder of sample / train / eval, an export, a dataset
//     of data synth, a demo): reused;
//   - anything else (a folder with other files, a folder of another kind, a regular file, a FIFO,
//     ...): refused with exit 2 and a hint naming --force. With force, an existing folder is
//     reused whatever it holds (a command that replaces its output folder, like export, then
//     replaces it); a path that is not a folder is still refused.
//   The marker file is written into the folder once it is accepted.
// A folder that the command fills without replacing it (a run folder: policy.writes names the
// entries it writes, e.g. config.yaml, checkpoints) may hold inputs of the same command (the lists
// that `perpo sample` wrote there, a checkpoint of it), as long as none of those entries is, holds
// or lies inside an input. A folder replaced whole (writes empty) may not hold an input.
// Output files:
//   - absent: fine (missing parent folders are created when written);
//   - a regular file: refused (exit 2, hint --force) unless force, then replaced atomically when
//     written (old content or new, never half); perpo cannot tell its own files from the user's.
//     A command that continues its own output (sample's resume) sets continue_existing and checks
//     the content itself before writing anything;
//   - a symlink: followed; the rules apply to the file it points to and the link is kept;
//   - a FIFO or character device (/dev/null, /dev/stdout, a terminal): written in place, never
//     replaced by a regular file (AtomicFileWriter does this);
//   - a folder, block device or socket: refused (exit 2).
// Always, with or without force: an output equal to an input, inside an input folder, or a folder
// above an input (above an input that the command's entries would reach, for a run folder) is
// refused (exit 2). Paths are compared after resolving symlinks, `..` and `.`
// (weakly_canonical, so outputs that do not exist yet are compared too), and a hard link to an
// input counts as the input.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "perpo/core/output_lock.h"

namespace perpo {

/// What a command reads (files or folders) and whether the user passed --force.
struct OutputPolicy {
  OutputPolicy() = default;
  OutputPolicy(std::vector<std::filesystem::path> inputs_, bool force_ = false,
               bool continue_existing_ = false)
      : inputs(std::move(inputs_)), force(force_), continue_existing(continue_existing_) {}

  std::vector<std::filesystem::path> inputs;
  bool force = false;
  // check_output_file: an existing regular file is the command's own output to continue; the
  // command checks its content before writing (perpo sample).
  bool continue_existing = false;
  // Output folders: which kind of output the folder holds (kOutputKind*; written in the marker).
  std::string kind = kOutputKindRun;
  // Output folders: the entries (names inside the folder) the command writes; empty = the command
  // replaces the whole folder (export), so the folder may hold no input at all.
  std::vector<std::string> writes;

  static constexpr const char* kOutputKindRun = "run";          // sample, train, eval, logps
  static constexpr const char* kOutputKindExport = "export";    // perpo export
  static constexpr const char* kOutputKindDataset = "dataset";  // perpo data synth
  static constexpr const char* kOutputKindDemo = "demo";        // perpo demo
};

/// Name of the marker file perpo writes into every output folder it accepts.
inline constexpr const char* kOutputMarkerName = ".perpo-output";

/// Checks, creates, locks and marks an output folder (rules above). Throws perpo::Error (input,
/// exit 2) naming the folder, with a hint, when the rules refuse it or another perpo process holds
/// it (output_lock.h); runtime (exit 1) when it cannot be created. The folder stays locked while
/// the returned lock lives: keep it for as long as the command writes there.
OutputLock prepare_output_dir(const std::filesystem::path& dir, const OutputPolicy& policy);

/// The checks of prepare_output_dir alone: creates and writes nothing (for commands that check
/// their outputs before a long computation and create them at the end).
void check_output_dir(const std::filesystem::path& dir, const OutputPolicy& policy);

/// Checks an output file (rules above); writes nothing. Throws perpo::Error (input, exit 2).
void check_output_file(const std::filesystem::path& file, const OutputPolicy& policy);

/// Throws perpo::Error (input) when `output` is equal to, inside or above one of `inputs`.
/// `what` names the output in the message ("--output", "export output").
void check_output_not_overlapping(const std::filesystem::path& output,
                                  const std::vector<std::filesystem::path>& inputs,
                                  const std::string& what = "output");

/// Throws perpo::Error (input) when `dir`'s entries `writes` would reach one of `inputs` (an entry
/// that is an input, holds one or lies inside one); `dir` itself may hold inputs elsewhere.
void check_entries_not_overlapping(const std::filesystem::path& dir,
                                   const std::vector<std::string>& writes,
                                   const std::vector<std::filesystem::path>& inputs);

/// True when `dir` holds perpo's marker file.
bool has_output_marker(const std::filesystem::path& dir);

/// The kind written in `dir`'s marker ("run", "export", ...); "" for a marker of an older perpo
/// that did not say; nullopt when there is no marker.
std::optional<std::string> output_marker_kind(const std::filesystem::path& dir);

/// Writes the marker file (saying `kind`) into `dir` (which must exist).
void write_output_marker(const std::filesystem::path& dir,
                         const std::string& kind = OutputPolicy::kOutputKindRun);

/// `path` made absolute with symlinks, `.` and `..` resolved as far as it exists.
std::filesystem::path resolved_path(const std::filesystem::path& path);

}  // namespace perpo
