// Output-path rules (see output_paths.h).
#include "perpo/core/output_paths.h"

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

/// "a FIFO", "a folder", ... for messages.
std::string describe(fs::file_type type) {
  switch (type) {
    case fs::file_type::directory:
      return "a folder";
    case fs::file_type::regular:
      return "a regular file";
    case fs::file_type::fifo:
      return "a FIFO";
    case fs::file_type::character:
      return "a character device";
    case fs::file_type::block:
      return "a block device";
    case fs::file_type::socket:
      return "a socket";
    default:
      return "not a regular file";
  }
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
                      describe(fs::status(parent, error).type()), ", not a folder");
  }
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

void check_output_not_overlapping(const fs::path& output, const std::vector<fs::path>& inputs,
                                  const std::string& what) {
  const fs::path out = resolved_path(output);
  for (const fs::path& input : inputs) {
    if (input.empty()) continue;
    const fs::path in = resolved_path(input);
    std::error_code error;
    const bool same_file = fs::exists(output, error) && fs::exists(input, error) &&
                           fs::equivalent(output, input, error);
    if (same_file || out == in) {
      throw input_error(what, " ", output.string(), " is the input ", input.string())
          .hint("write the output to a new path; perpo never overwrites its inputs");
    }
    if (starts_with(out, in)) {
      throw input_error(what, " ", output.string(), " is inside the input folder ", input.string())
          .hint("write the output outside the input folder");
    }
    if (starts_with(in, out)) {
      throw input_error(what, " ", output.string(), " is a folder above the input ", input.string())
          .hint("writing it could remove the input; choose a folder that does not contain it");
    }
  }
}

bool has_output_marker(const fs::path& dir) {
  std::error_code error;
  return fs::is_regular_file(dir / kOutputMarkerName, error);
}

void write_output_marker(const fs::path& dir) {
  write_file_atomic(dir / kOutputMarkerName,
                    "This folder was written by perpo. perpo writes into (and may replace) a "
                    "folder that holds this file.\n");
}

void check_output_dir(const fs::path& dir, const OutputPolicy& policy) {
  PERPO_CHECK_INPUT(!dir.empty(), "the output folder path is empty");
  check_output_not_overlapping(dir, policy.inputs, "output folder");
  std::error_code error;
  const fs::file_status status = fs::status(dir, error);  // follows a symlink to a folder
  if (status.type() == fs::file_type::not_found) {
    check_parent_can_hold(dir, "output folder");
  } else if (status.type() != fs::file_type::directory) {
    throw input_error("output folder ", dir.string(), " exists and is ", describe(status.type()),
                      ", not a folder")
        .hint("choose another output path; perpo does not replace it");
  } else if (!has_output_marker(dir) && !fs::is_empty(dir, error) && !policy.force) {
    throw input_error("output folder ", dir.string(),
                      " already holds files that perpo did not write")
        .hint("choose a new or empty folder, or pass --force to write into this one anyway");
  }
}

void prepare_output_dir(const fs::path& dir, const OutputPolicy& policy) {
  check_output_dir(dir, policy);
  std::error_code error;
  if (!fs::exists(dir, error)) {
    fs::create_directories(dir, error);
    if (error) {
      throw runtime_error("cannot create the output folder ", dir.string(), ": ", error.message())
          .hint("check that its parent is writable");
    }
  } else if (!has_output_marker(dir) && !fs::is_empty(dir, error)) {
    PERPO_LOG_WARN("--force: writing into ", dir.string(),
                   ", which holds files perpo did not write");
  }
  write_output_marker(dir);
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
      throw input_error("output file ", file.string(), " is ", describe(type),
                        "; perpo writes regular files, FIFOs and character devices only")
          .hint("choose another output path");
  }
}

}  // namespace perpo
