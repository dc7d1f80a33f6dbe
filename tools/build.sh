#!/usr/bin/env bash
# Configures and builds perpo into build/ with Ninja and ccache.
#   ./tools/build.sh [extra cmake --build args, e.g. --target test_config]
# Environment: BUILD_DIR (default build), PERPO_CMAKE_ARGS (extra configure flags),
# PERPO_JOBS (parallel jobs, default all cores).
# The first run configures; later runs configure again only when PERPO_CMAKE_ARGS differ from the
# ones last applied (kept in BUILD_DIR/perpo_cmake_args), so
#   PERPO_CMAKE_ARGS=-DPERPO_BUILD_BENCH=ON ./tools/build.sh
# turns the benchmarks on in an existing build/ too. Options set once stay in CMake's cache.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
cmake_bin=/usr/bin/cmake
[ -x "$cmake_bin" ] || cmake_bin=cmake
args="${PERPO_CMAKE_ARGS:-}"
stamp="$build_dir/perpo_cmake_args"
if [ ! -f "$build_dir/build.ninja" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$args" ]; then
  # shellcheck disable=SC2086
  "$cmake_bin" -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPERPO_BUILD_TESTS=ON $args
  printf '%s' "$args" >"$stamp"
fi
jobs="${PERPO_JOBS:-$(nproc)}"
"$cmake_bin" --build "$build_dir" -j "$jobs" "$@"
