#!/usr/bin/env bash
# Builds (if needed) and runs one libFuzzer target for a while.
#
#   ./tools/fuzz.sh TARGET [SECONDS] [libFuzzer flags ...]   e.g. ./tools/fuzz.sh box_parser 600
#   ./tools/fuzz.sh --list                                   the targets
#   ./tools/fuzz.sh --build                                  build every target, run none
#
# Targets (fuzz/<target>.cpp): box_parser (reward), jsonl_reader and authors_json (data),
# safetensors_header (model), yaml_config (config). None needs LibTorch.
#
# Builds with Debian's clang (-fsanitize=fuzzer,address,undefined) into build-fuzz/ (FUZZ_BUILD_DIR),
# installing clang and its runtime libraries when they are missing (needs root or sudo). A run
# starts from the committed seeds (fuzz/corpus/TARGET/) with the words of fuzz/TARGET.dict, and
# keeps what it learns in build-fuzz/corpus/TARGET/ (not committed); its log is
# build-fuzz/logs/TARGET.log.
# A crash (sanitizer report, failed check, uncaught exception, timeout, out of memory) stops the
# run and saves the input in build-fuzz/crashes/TARGET/; once fixed, commit the input to
# tests/fixtures/fuzz/TARGET/, where the regular test suite replays it (fuzz_replay_TARGET).
# Environment: PERPO_JOBS (build jobs, default nproc). On a shared machine: nice -n 19 ./tools/fuzz.sh ...
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
targets=(box_parser jsonl_reader authors_json safetensors_header yaml_config)
cmake_bin=/usr/bin/cmake
[ -x "$cmake_bin" ] || cmake_bin=cmake

usage() { sed -n '2,20p' "$0"; }
case "${1:-}" in
  "" | -h | --help) usage; exit 0 ;;
  --list) printf '%s\n' "${targets[@]}"; exit 0 ;;
esac
target="$1"
seconds="${2:-60}"
shift $(( $# >= 2 ? 2 : 1 ))
if [ "$target" != "--build" ] && [[ ! " ${targets[*]} " =~ " $target " ]]; then
  echo "fuzz.sh: unknown target '$target'; targets: ${targets[*]}" >&2
  exit 2
fi
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2; }

# --- clang with libFuzzer and the sanitizer runtimes ------------------------------------------
have_libfuzzer() {
  command -v clang++ >/dev/null 2>&1 &&
    echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
      clang++ -x c++ -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1
}
if ! have_libfuzzer; then
  echo "[fuzz] installing clang and its runtime libraries (libFuzzer, ASan, UBSan)"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null
  have_libfuzzer || { echo "fuzz.sh: clang cannot link -fsanitize=fuzzer; install libclang-rt-dev" >&2; exit 1; }
fi

# --- build ------------------------------------------------------------------------------------
if [ ! -f "$build_dir/build.ninja" ]; then
  "$cmake_bin" -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DPERPO_WITH_TORCH=OFF -DPERPO_BUILD_TESTS=OFF \
    -DPERPO_BUILD_FUZZ=ON -DPERPO_SANITIZE=address,undefined
fi
jobs="${PERPO_JOBS:-$(nproc)}"
if [ "$target" = "--build" ]; then
  "$cmake_bin" --build "$build_dir" -j "$jobs" --target "${targets[@]/#/fuzz_}"
  exit 0
fi
"$cmake_bin" --build "$build_dir" -j "$jobs" --target "fuzz_$target"

# --- run --------------------------------------------------------------------------------------
corpus="$build_dir/corpus/$target"
crashes="$build_dir/crashes/$target"
log="$build_dir/logs/$target.log"
mkdir -p "$corpus" "$crashes" "$(dirname "$log")"
dict=()
[ -f "$root/fuzz/$target.dict" ] && dict=(-dict="$root/fuzz/$target.dict")
echo "[fuzz] $target for $seconds s; log $log"
set +e
(cd "$build_dir" && "$build_dir/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=30 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" "${dict[@]}" "$@" \
  "$corpus" "$root/fuzz/corpus/$target") >"$log" 2>&1
status=$?
set -e
grep -E '^#[0-9]+.*(DONE|pulse)' "$log" | tail -1 || true
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
elapsed=$(grep -oE '^Done [0-9]+ runs in [0-9]+ second' "$log" | grep -oE '[0-9]+ second' | grep -oE '[0-9]+' || true)
if [ -n "$runs" ] && [ -n "$elapsed" ] && [ "$elapsed" -gt 0 ]; then
  echo "[fuzz] $target: $runs runs in $elapsed s = $((runs / elapsed)) exec/s; corpus $(ls "$corpus" | wc -l) inputs"
fi
if [ "$status" -ne 0 ]; then
  echo "[fuzz] $target FAILED (exit $status); the report:" >&2
  grep -E 'ERROR|fuzz check failed|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -20 >&2
  echo "[fuzz] reproduce: $build_dir/fuzz/fuzz_$target <the input above>; once fixed, copy it to" \
    "tests/fixtures/fuzz/$target/ (the replay test runs it)" >&2
  exit 1
fi
echo "[fuzz] $target: clean"
