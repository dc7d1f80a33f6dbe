#!/usr/bin/env bash
# Builds the test suite with AddressSanitizer + UndefinedBehaviorSanitizer and runs it.
#
#   ./tools/sanitize.sh            the modules without LibTorch (core, config, reward, tokenizer,
#                                  image, data, synth: their tests) and the fuzz targets' replay
#                                  tests;
#                                  into build-asan/ (CI runs this)
#   ./tools/sanitize.sh --all      every module and test, LibTorch's included; into build-asan-all/
#   ./tools/sanitize.sh [--all] [--target T ...] [ctest arguments, e.g. -R reward]
#                                  build only target T (repeatable), run the tests ctest selects
#
# Compiler: g++ (CXX to change it), RelWithDebInfo (-O2 -g, assertions on). Any sanitizer report
# fails the test that triggers it. LibTorch and the other dependencies are not instrumented; with
# --all, LeakSanitizer is off (ASAN_OPTIONS=detect_leaks=0) because LibTorch keeps allocations it
# never frees at exit. Environment: PERPO_JOBS (build jobs, default nproc).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
all=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --all) all=1; shift ;;
    --target) targets+=(--target "$2"); shift 2 ;;
    *) break ;;
  esac
done
case "${1:-}" in -h | --help) sed -n '2,15p' "$0"; exit 0 ;; esac
cmake_bin=/usr/bin/cmake
[ -x "$cmake_bin" ] || cmake_bin=cmake

if [ "$all" -eq 1 ]; then
  build_dir="${SANITIZE_BUILD_DIR:-$root/build-asan-all}"
  with_torch=ON
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
else
  build_dir="${SANITIZE_BUILD_DIR:-$root/build-asan}"
  with_torch=OFF
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
fi
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

start=$(date +%s)
if [ ! -f "$build_dir/build.ninja" ]; then
  "$cmake_bin" -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPERPO_WITH_TORCH="$with_torch" -DPERPO_BUILD_TESTS=ON -DPERPO_SANITIZE=address,undefined \
    ${CXX:+-DCMAKE_CXX_COMPILER="$CXX"}
fi
"$cmake_bin" --build "$build_dir" -j "${PERPO_JOBS:-$(nproc)}" "${targets[@]}"
built=$(date +%s)
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" "$@"
end=$(date +%s)
echo "[sanitize] ASan+UBSan $([ "$all" -eq 1 ] && echo 'all modules' || echo 'modules without LibTorch'):" \
  "build $((built - start)) s, tests $((end - built)) s"
