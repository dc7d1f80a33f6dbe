// Robustness rows for perpo itself: flags, unknown subcommands, output that cannot be written.
#include "harness.h"

namespace perpo::robustness {

PERPO_ROBUSTNESS_CASES(main) {
  return {
      {"version_to_full_disk", "--version", nullptr, 1, "cannot write to standard output", "",
       "/dev/full"},
      {"help_to_full_disk", "--help", nullptr, 1, "cannot write to standard output", "",
       "/dev/full"},
      {"config_show_to_full_disk", "config show", nullptr, 1, "cannot write to standard output", "",
       "/dev/full"},
      {"unknown_subcommand", "frobnicate", nullptr, 2, "frobnicate"},
      {"unknown_flag", "--bogus", nullptr, 2, "--bogus"},
      {"unknown_log_level", "--log-level loud --version", nullptr, 2, "unknown log level 'loud'"},
      {"two_subcommands", "config show score", nullptr, 2, "score"},
  };
}

}  // namespace perpo::robustness
