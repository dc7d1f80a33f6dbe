// Output-path rules: what perpo may write, checked before any work starts (interfaces.md,
// "Outputs never destroy inputs"). Every command calls one of these on each output it names.
//
//   perpo::OutputPolicy policy{{checkpoint_dir}, force};       // inputs of the command, --force
//   perpo::prepare_output_dir(out_dir, policy);                // a folder the command fills
//   perpo::check_output_file("scored.jsonl", {{input_file}});  // a single output file
//
// Output folders:
//   - absent: created (with missing parents);
//   - empty, or holding perpo's marker file (.perpo-output, written by an earlier perpo command):
//     reused;
//   - anything else (a folder with other files, a regular file, a FIFO, ...): refused with exit 2
//     and a hint naming --force. With force, an existing folder is reused whatever it holds
//     (a command that replaces its output folder, like export, then replaces it); a path that is
//     not a folder is still refused.
//   The marker file is written into the folder once it is accepted.
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
// above an input is refused (exit 2). Paths are compared after resolving symlinks, `..` and `.`
// (weakly_canonical, so outputs that do not exist yet are compared too), and a hard link to an
// input counts as the input.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace perpo {

/// What a command reads (files or folders) and whether the user passed --force.
struct OutputPolicy {
  std::vector<std::filesystem::path> inputs;
  bool force = false;
  // check_output_file: an existing regular file is the command's own output to continue; the
  // command checks its content before writing (perpo sample).
  bool continue_existing = false;
};

/// Name of the marker file perpo writes into every output folder it accepts.
inline constexpr const char* kOutputMarkerName = ".perpo-output";

/// Checks, creates and marks an output folder (rules above). Throws perpo::Error (input, exit 2)
/// naming the folder, with a hint, when the rules refuse it; runtime (exit 1) when it cannot be
/// created.
void prepare_output_dir(const std::filesystem::path& dir, const OutputPolicy& policy);

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

/// True when `dir` holds perpo's marker file.
bool has_output_marker(const std::filesystem::path& dir);

/// Writes the marker file into `dir` (which must exist).
void write_output_marker(const std::filesystem::path& dir);

/// `path` made absolute with symlinks, `.` and `..` resolved as far as it exists.
std::filesystem::path resolved_path(const std::filesystem::path& path);

}  // namespace perpo
