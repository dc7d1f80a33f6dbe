// Output-path rules (see output_paths.h).
#include "perpo/core/output_paths.h"

#include "perpo/core/input_file.h"

#include <system_error>

#include "perpo/core/atomic_file.h"
#include "perpo/core/error.h"
#include "perpo/core/log.h"

namespace perpo {
namespace fs = std::filesystem;

namespace {

/// True when every component of `ancestor` starts `path` (both resolved, so no `..` left).
bool starts_with(const fs::path& path, const fs::path& ancestor) {
  auto p = path.begin();
  for (auto a = ancestor.begin(); a != ancestor.end(); ++a, ++p) {
    if (p == path.end() || *p != *a) return false;
  }
  return true;
}

/// The nearest existing folder at or above `path`'s parent must be a folder: `a.txt/out.jsonl`
/// cannot be created when a.txt is a file.
void check_parent_can_hold(const fs::path& path, const std::string& what) {
  fs::path parent = fs::absolute(path).parent_path();
  std::error_code error;
  while (!parent.empty() && !fs::exists(parent, error)) {
    if (parent == parent.parent_path()) break;
    parent = parent.parent_path();
  }
  if (!parent.empty() && fs::exists(parent, error) && !fs::is_directory(parent, error)) {
    throw input_error(what, " ", path.string(), " cannot be created: ", parent.string(), " is ",
                      describe_file_type(fs::status(parent, error).type()), ", not a folder");
  }
}

/// True when `dir` holds nothing, or only a lock file of a perpo process (output_lock.h).
bool is_empty_folder(const fs::path& dir) {
  std::error_code error;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    if (it->path().filename() != ".perpo-lock") return false;
  }
  return true;
}

}  // namespace

fs::path resolved_path(const fs::path& path) {
  std::error_code error;
  fs::path absolute = fs::absolute(path, error);
  if (error) absolute = path;
  fs::path resolved = fs::weakly_canonical(absolute, error);
  if (error) resolved = absolute.lexically_normal();
  // Drop a trailing separator ("out/" -> "out") so component comparisons line up.
  fs::path clean;
  for (const fs::path& part : resolved) {
    if (!part.empty()) clean /= part;
  }
  return clean;
}

namespace {

/// The input that `output` is, lies inside, or (when `above_allowed` is false) is a folder above.
void check_one(const fs::path& output, const fs::path& out, const fs::path& input,
               const std::string& what, bool above_allowed) {
  if (input.empty()) return;
  const fs::path in = resolved_path(input);
  std::error_code error;
  const bool same_file =
      fs::exists(output, error) && fs::exists(input, error) && fs::equivalent(output, input, error);
  if (same_file || out == in) {
    throw input_error(what, " ", output.string(), " is the input ", input.string())
        .hint("write the output to a new path; perpo never overwrites its inputs");
  }
  if (starts_with(out, in)) {
    throw input_error(what, " ", output.string(), " is inside the input folder ", input.string())
        .hint("write the output outside the input folder");
  }
  if (!above_allowed && starts_with(in, out)) {
    throw input_error(what, " ", output.string(), " is a folder above the input ", input.string())
        .hint("writing it could remove the input; choose a folder that does not contain it");
  }
}

}  // namespace

void check_output_not_overlapping(const fs::path& output, const std::vector<fs::path>& inputs,
                                  const std::string& what) {
  const fs::path out = resolved_path(output);
  for (const fs::path& input : inputs) check_one(output, out, input, what, false);
}

void check_entries_not_overlapping(const fs::path& dir, const std::vector<std::string>& writes,
                                   const std::vector<fs::path>& inputs) {
  for (const std::string& entry : writes) {
    const fs::path output = dir / entry;
    check_output_not_overlapping(output, inputs, "output " + entry + " of the folder");
  }
}

bool has_output_marker(const fs::path& dir) {
  std::error_code error;
  return fs::is_regular_file(dir / kOutputMarkerName, error);
}

namespace {
constexpr const char* kKindLine = "kind: ";
}

std::optional<std::string> output_marker_kind(const fs::path& dir) {
  if (!has_output_marker(dir)) return std::nullopt;
  std::string text;
  try {
    text = read_file(dir / kOutputMarkerName);
  } catch (const Error&) {
    return std::string();
  }
  const std::size_t at = text.find(std::string("\n") + kKindLine);
  if (at == std::string::npos) return std::string();  // an older perpo's marker
  const std::size_t start = at + 1 + std::char_traits<char>::length(kKindLine);
  const std::size_t end = text.find('\n', start);
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

void write_output_marker(const fs::path& dir, const std::string& kind) {
  write_file_atomic(dir / kOutputMarkerName,
                    "This folder was written by perpo. perpo writes into (and may replace) a "
                    "folder that holds this file, when it writes the same kind of output.\n" +
                        std::string(kKindLine) + kind + "\n");
}

namespace {

/// "a run folder (sample, train, eval)" for messages.
std::string describe_kind(const std::string& kind) {
  if (kind == OutputPolicy::kOutputKindRun) return "a run folder (perpo sample, train or eval)";
  if (kind == OutputPolicy::kOutputKindExport) return "an export (perpo export)";
  if (kind == OutputPolicy::kOutputKindDataset) return "a dataset (perpo data synth)";
  if (kind == OutputPolicy::kOutputKindDemo) return "a demo folder (perpo demo)";
  return "'" + kind + "' output";
}

/// A marked folder is reused by the same kind of output; an older perpo's marker (no kind) by run
/// commands and the demo, never by export or data synth (which replace what they find).
bool marker_allows(const fs::path& dir, const std::string& kind) {
  const auto marked = output_marker_kind(dir);
  if (!marked) return false;
  if (marked->empty()) {  // an older perpo's marker: reused by the commands that fill folders
    return kind == OutputPolicy::kOutputKindRun || kind == OutputPolicy::kOutputKindDemo;
  }
  return *marked == kind;
}

}  // namespace

void check_output_dir(const fs::path& dir, const OutputPolicy& policy) {
  PERPO_CHECK_INPUT(!dir.empty(), "the output folder path is empty");
  if (policy.writes.empty()) {
    check_output_not_overlapping(dir, policy.inputs, "output folder");
  } else {  // filled, not replaced: inputs may lie in it, beside what the command writes
    const fs::path out = resolved_path(dir);
    for (const fs::path& input : policy.inputs) check_one(dir, out, input, "output folder", true);
    check_entries_not_overlapping(dir, policy.writes, policy.inputs);
  }
  std::error_code error;
  const fs::file_status status = fs::status(dir, error);  // follows a symlink to a folder
  if (status.type() == fs::file_type::not_found) {
    check_parent_can_hold(dir, "output folder");
  } else if (status.type() != fs::file_type::directory) {
    throw input_error("output folder ", dir.string(), " exists and is ",
                      describe_file_type(status.type()), ", not a folder")
        .hint("choose another output path; perpo does not replace it");
  } else if (!policy.force && !marker_allows(dir, policy.kind) && !is_empty_folder(dir)) {
    const auto marked = output_marker_kind(dir);
    if (marked && !marked->empty()) {
      throw input_error("output folder ", dir.string(), " holds ", describe_kind(*marked), ", not ",
                        describe_kind(policy.kind))
          .hint("choose another folder, or pass --force to write into this one anyway");
    }
    throw input_error("output folder ", dir.string(),
                      " already holds files that perpo did not write")
        .hint("choose a new or empty folder, or pass --force to write into this one anyway");
  }
}

OutputLock prepare_output_dir(const fs::path& dir, const OutputPolicy& policy) {
  check_output_dir(dir, policy);
  std::error_code error;
  if (!fs::exists(dir, error)) {
    fs::create_directories(dir, error);
    if (error) {
      throw runtime_error("cannot create the output folder ", dir.string(), ": ", error.message())
          .hint("check that its parent is writable");
    }
  }
  OutputLock lock = OutputLock::folder(dir, "output folder");
  check_output_dir(dir, policy);  // again under the lock: another process may have written it
  if (!marker_allows(dir, policy.kind) && !is_empty_folder(dir)) {
    PERPO_LOG_WARN("--force: writing into ", dir.string(),
                   ", which holds files perpo did not write for this kind of output");
  }
  write_output_marker(dir, policy.kind);
  return lock;
}

void check_output_file(const fs::path& file, const OutputPolicy& policy) {
  PERPO_CHECK_INPUT(!file.empty(), "the output file path is empty");
  check_output_not_overlapping(file, policy.inputs, "output file");
  std::error_code error;
  const fs::file_type type = fs::status(file, error).type();  // follows symlinks
  switch (type) {
    case fs::file_type::not_found:
      check_parent_can_hold(file, "output file");
      return;
    case fs::file_type::regular:  // replaced atomically, or continued by its command
      if (!policy.force && !policy.continue_existing) {
        throw input_error("output file ", file.string(),
                          " already exists; perpo replaces an existing file only with --force")
            .hint("pass --force to replace it, or choose another output path");
      }
      return;
    case fs::file_type::fifo:       // written in place
    case fs::file_type::character:  // written in place (/dev/null, /dev/stdout)
      return;
    default:
      throw input_error("output file ", file.string(), " is ", describe_file_type(type),
                        "; perpo writes regular files, FIFOs and character devices only")
          .hint("choose another output path");
  }
}

}  // namespace perpo
