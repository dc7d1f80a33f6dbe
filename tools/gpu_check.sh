#!/usr/bin/env bash
# One check of perpo on a machine with an NVIDIA GPU, within a time budget (default 8 minutes):
#   1. configures and builds perpo against the CUDA LibTorch of the machine's torch wheel
#      (python -c 'import torch; print(torch.utils.cmake_prefix_path)') into build-cuda/,
#   2. runs `perpo bench --shape 7b --device cuda --dtype bf16` (perpo and the transformers peer),
#      then `perpo bench --shape qwen2.5-vl-7b` (or -3b where the 7B's state does not fit),
#   3. builds the tests and runs the suite (ctest) with the time that is left,
# then prints one summary (each step: ok / FAILED / skipped, with its time) and the bench table.
#
#   tools/gpu_check.sh [--deps DIR] [--budget SECONDS] [--jobs N] [--no-tests] [--no-peer]
#   tools/gpu_check.sh --pack-deps DIR    (on a Debian machine that builds perpo: see below)
#
# Python: $PERPO_PYTHON, else .venv/bin/python, else python3; it must import a torch built with
# CUDA. C++ dependencies (nlohmann-json, spdlog, CLI11, yaml-cpp, utf8proc, PCRE2, sentencepiece,
# stb, GoogleTest): found as usual; a GPU machine without Debian's packages gets them from --deps
# DIR, a folder made beforehand on a Debian machine where perpo builds with --pack-deps DIR (copies
# of the installed -dev packages and their libraries, no download). More configure flags:
# PERPO_GPU_CMAKE_ARGS (e.g. -DCUDAToolkit_ROOT=/usr/local/cuda). Logs: build-cuda/gpu_check/.
# Exit status: 0 when every step that ran passed, 1 otherwise, 2 for bad usage.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$root/build-cuda"
budget=480
jobs="${PERPO_JOBS:-$(nproc)}"
deps=""
pack=""
run_tests=1
peer_flag=()

usage() { sed -n '2,18p' "$0"; }
die() { echo "gpu_check: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --deps) [ $# -ge 2 ] || die "--deps needs a folder"; deps="$(cd "$2" && pwd)"; shift 2 ;;
    --pack-deps) [ $# -ge 2 ] || die "--pack-deps needs a folder"; pack="$2"; shift 2 ;;
    --budget) [ $# -ge 2 ] || die "--budget needs seconds"; budget="$2"; shift 2 ;;
    --jobs) [ $# -ge 2 ] || die "--jobs needs a number"; jobs="$2"; shift 2 ;;
    --no-tests) run_tests=0; shift ;;
    --no-peer) peer_flag=(--no-peer); shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done
case "$budget" in '' | *[!0-9]*) die "--budget must be whole seconds, got '$budget'" ;; esac
case "$jobs" in '' | *[!0-9]* | 0) die "--jobs must be a positive number, got '$jobs'" ;; esac

# --- --pack-deps: copy the installed C++ dependencies into a folder --------------------------
if [ -n "$pack" ]; then
  command -v dpkg-query >/dev/null || die "--pack-deps needs a Debian machine (dpkg-query)"
  packages=(libsentencepiece-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libyaml-cpp-dev
            libstb-dev libutf8proc-dev libpcre2-dev libgloo-dev libgtest-dev libgmock-dev fonts-dejavu-core)
  # Add the installed lib* packages they depend on (two levels: libspdlog-dev -> libfmt-dev ->
  # libfmt9), leaving out the C and C++ runtimes, which the GPU machine has.
  for _round in 1 2; do
    for pkg in "${packages[@]}"; do
      for dep in $(dpkg-query -W -f='${Depends}' "$pkg" 2>/dev/null | tr ',|' '\n' |
                   sed -E 's/^ *([^ :(]+).*/\1/' | grep -E '^lib' || true); do
        case "$dep" in libc6* | libgcc* | libstdc++* | libc-dev*) continue ;; esac
        dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q "install ok installed" || continue
        case " ${packages[*]} " in *" $dep "*) ;; *) packages+=("$dep") ;; esac
      done
    done
  done
  mkdir -p "$pack"
  pack="$(cd "$pack" && pwd)"
  for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      die "$pkg is not installed here (run tools/setup.sh first)"
    dpkg -L "$pkg" | while IFS= read -r path; do
      if [ -f "$path" ] || [ -L "$path" ]; then
        mkdir -p "$pack$(dirname "$path")"
        cp -a "$path" "$pack$path"
      fi
    done
  done
  echo "gpu_check: packed ${#packages[@]} packages into $pack ($(du -sh "$pack" | cut -f1)):"
  echo "  ${packages[*]}"
  echo "on the GPU machine: tools/gpu_check.sh --deps $pack"
  exit 0
fi

# --- the time budget --------------------------------------------------------------------------
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
mkdir -p "$build_dir/gpu_check"
logs="$build_dir/gpu_check"
summary=()
failed=0
note() { summary+=("$(printf '%-22s %-8s %5ss  %s' "$1" "$2" "$3" "$4")"); }
# step NAME SECONDS_CAP LOG COMMAND...: runs COMMAND with at most min(cap, time left - 5 s).
step() {
  local name="$1" cap="$2" log="$3"
  shift 3
  local limit
  limit=$(left)
  limit=$((limit - 5))
  [ "$limit" -gt "$cap" ] && limit="$cap"
  if [ "$limit" -lt 10 ]; then
    note "$name" skipped 0 "no time left in the ${budget} s budget"
    return 1
  fi
  local t0 rc=0
  t0=$(date +%s)
  echo "gpu_check: $name (at most ${limit} s; log $log)"
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1 || rc=$?
  local took=$(($(date +%s) - t0))
  if [ "$rc" -eq 0 ]; then
    note "$name" ok "$took" ""
    return 0
  fi
  failed=1
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    note "$name" FAILED "$took" "timed out after ${limit} s; see $log"
  else
    note "$name" FAILED "$took" "exit $rc; last line: $(tail -n 1 "$log" | cut -c1-120)"
  fi
  return 1
}
finish() {
  echo
  echo "=== gpu_check summary ($(($(date +%s) - start)) s of ${budget} s) ==="
  printf '%s\n' "${summary[@]}"
  exit "$failed"
}

# --- Python with a CUDA torch -----------------------------------------------------------------
python="${PERPO_PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
if ! torch_info=$("$python" -c 'import torch, sys
print(torch.__version__, torch.version.cuda or "none", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
print(torch.utils.cmake_prefix_path)' 2>&1); then
  echo "gpu_check: $python cannot import torch: $torch_info" >&2
  echo "gpu_check: set PERPO_PYTHON to a Python whose torch has CUDA" >&2
  exit 1
fi
read -r torch_version torch_cuda cuda_ok gpu_name <<<"$(head -n 1 <<<"$torch_info")"
torch_prefix="$(tail -n 1 <<<"$torch_info")"
echo "gpu_check: torch $torch_version (CUDA $torch_cuda) from $python; GPU: $gpu_name"
if [ "$torch_cuda" = "none" ] || [ "$cuda_ok" != "True" ]; then
  echo "gpu_check: this torch has no usable CUDA (torch.version.cuda=$torch_cuda," \
       "is_available=$cuda_ok): nothing to check" >&2
  exit 1
fi
note "torch" ok 0 "torch $torch_version, CUDA $torch_cuda, $gpu_name"

# --- tools: cmake (pip's cmake beside the Python counts), ninja or make ----------------------
PATH="$PATH:$(dirname "$python")"
export PATH
command -v cmake >/dev/null || { echo "gpu_check: no cmake on PATH (pip install cmake)" >&2; exit 1; }
generator="Unix Makefiles"
command -v ninja >/dev/null && generator=Ninja

cmake_args=(-S "$root" -B "$build_dir" -G "$generator" -DCMAKE_BUILD_TYPE=Release
            -DPERPO_BUILD_TESTS=ON "-DTorch_DIR=$torch_prefix/Torch")
prefixes="$torch_prefix"
if [ -n "$deps" ]; then
  # Debian's multiarch layout: config files under usr/lib/<arch>/cmake, libraries beside them.
  arch=""
  for dir in "$deps"/usr/lib/*-linux-gnu; do [ -d "$dir" ] && arch="$(basename "$dir")"; done
  prefixes="$prefixes;$deps/usr"
  [ -n "$arch" ] && cmake_args+=("-DCMAKE_LIBRARY_ARCHITECTURE=$arch")
  export PKG_CONFIG_PATH="$deps/usr/lib/$arch/pkgconfig:$deps/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export PKG_CONFIG_SYSROOT_DIR="$deps"
  export LD_LIBRARY_PATH="$deps/usr/lib/$arch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
cmake_args+=("-DCMAKE_PREFIX_PATH=$prefixes")
if [ -n "${PERPO_GPU_CMAKE_ARGS:-}" ]; then
  read -r -a extra_args <<<"$PERPO_GPU_CMAKE_ARGS"
  cmake_args+=("${extra_args[@]}")
fi
# CUDA LibTorch's CMake config looks for the CUDA toolkit; a pip wheel's or /usr/local/cuda.
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  PATH="$PATH:/usr/local/cuda/bin"
  cmake_args+=(-DCUDAToolkit_ROOT=/usr/local/cuda)
fi

trap finish EXIT
if ! step configure 120 "$logs/configure.log" cmake "${cmake_args[@]}"; then
  echo "gpu_check: configure failed; the end of $logs/configure.log:" >&2
  tail -n 15 "$logs/configure.log" >&2
  if grep -qi "cudatoolkit\|nvcc\|CUDA_TOOLKIT\|find CUDA" "$logs/configure.log"; then
    echo "gpu_check: LibTorch's CMake config needs the CUDA toolkit (nvcc and headers): put nvcc" \
         "on PATH or set CUDAToolkit_ROOT (extra flags: PERPO_GPU_CMAKE_ARGS)" >&2
  else
    echo "gpu_check: missing C++ dependencies? make a folder with --pack-deps on a Debian" \
         "machine and pass it with --deps (extra flags: PERPO_GPU_CMAKE_ARGS)" >&2
  fi
  exit 1
fi
step "build perpo" 300 "$logs/build_perpo.log" cmake --build "$build_dir" -j "$jobs" --target perpo_cli ||
  { tail -n 15 "$logs/build_perpo.log" >&2; exit 1; }

bench_log="$logs/bench_7b.log"
export PERPO_PYTHON="$python"
# perpo bench fails when the peer cannot run: measure perpo alone where transformers is missing.
if [ "${#peer_flag[@]}" -eq 0 ] && ! "$python" -c 'import torch, transformers' >/dev/null 2>&1; then
  echo "gpu_check: $python lacks torch or transformers: the bench runs without its peer" >&2
  peer_flag=(--no-peer)
fi
if step "bench 7b bf16" 240 "$bench_log" "$build_dir/perpo" bench --shape 7b --device cuda \
  --dtype bf16 --iterations 3 "${peer_flag[@]}"; then
  summary+=("$(sed -n '/^ *perpo  *peer/,$p' "$bench_log")")
else
  tail -n 20 "$bench_log" >&2
fi
# A Qwen2.5-VL shape through the same code (no peer: the peer scripts run LLaVA only): the 7B
# where the GPU holds its bf16 training state (--plan says so; 115 GiB: an H200, not an H100),
# else the 3B.
qwen_shape=qwen2.5-vl-3b
if "$build_dir/perpo" bench --shape qwen2.5-vl-7b --device cuda --dtype bf16 --plan 2>/dev/null |
  grep -q "would pass the memory check"; then
  qwen_shape=qwen2.5-vl-7b
fi
qwen_log="$logs/bench_$qwen_shape.log"
if step "bench $qwen_shape bf16" 180 "$qwen_log" "$build_dir/perpo" bench --shape "$qwen_shape" \
  --device cuda --dtype bf16 --iterations 3; then
  summary+=("$(sed -n '/^ *model:/p; /^ *perpo  *peer/,$p' "$qwen_log")")
else
  tail -n 20 "$qwen_log" >&2
fi

# Data parallel on NCCL where the machine has 2 GPUs or more (docs/data-parallel.md).
gpus="$("$python" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)"
if [ "$gpus" -ge 2 ]; then
  if step "data parallel nccl" 180 "$logs/ddp.log" "$root/tools/bench_ddp.sh" --steps 6 \
    --perpo "$build_dir/perpo" --device cuda --world 2; then
    summary+=("$(tail -n 7 "$logs/ddp.log")")
  else
    tail -n 20 "$logs/ddp.log" >&2
  fi
else
  note "data parallel nccl" skipped 0 "$gpus GPU(s): needs 2"
fi

if [ "$run_tests" -eq 1 ]; then
  if step "build tests" 300 "$logs/build_tests.log" cmake --build "$build_dir" -j "$jobs"; then
    step "ctest" 300 "$logs/ctest.log" ctest --test-dir "$build_dir" -j "$jobs" \
      --output-on-failure || true
    summary+=("ctest: $(grep -E 'tests passed|tests failed' "$logs/ctest.log" | tail -n 1 || true)")
  fi
else
  note "tests" skipped 0 "--no-tests"
fi
