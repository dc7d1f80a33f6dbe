#!/usr/bin/env bash
# Configures (once) and builds perpo into build/ with Ninja and ccache.
#   ./tools/build.sh [extra cmake --build args, e.g. --target test_config]
# Environment: BUILD_DIR (default build), PERPO_CMAKE_ARGS (extra configure flags).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
cmake_bin=/usr/bin/cmake
[ -x "$cmake_bin" ] || cmake_bin=cmake
if [ ! -f "$build_dir/build.ninja" ]; then
  # shellcheck disable=SC2086
  "$cmake_bin" -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPERPO_BUILD_TESTS=ON ${PERPO_CMAKE_ARGS:-}
fi
jobs="${PERPO_JOBS:-$(nproc)}"
"$cmake_bin" --build "$build_dir" -j "$jobs" "$@"
