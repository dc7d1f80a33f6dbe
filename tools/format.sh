#!/usr/bin/env bash
# Formats every C++ file of the project with clang-format (.clang-format at the root).
#   ./tools/format.sh            rewrite files in place
#   ./tools/format.sh --check    list files that need formatting; exit 1 if any
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.hpp' '*.cc' '*.h.in')
[ "${#files[@]}" -gt 0 ] || exit 0
if [ "${1:-}" = "--check" ]; then
  bad=0
  for f in "${files[@]}"; do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then echo "needs formatting: $f"; bad=1; fi
  done
  exit $bad
fi
clang-format -i "${files[@]}"
