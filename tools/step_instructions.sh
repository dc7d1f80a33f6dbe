#!/usr/bin/env bash
# Instructions per training step and per sampled list of `perpo bench`, counted by callgrind:
# the same count for the same binary and inputs whatever else the machine does, so two builds
# compare on a shared or noisy machine where wall times do not (docs/benchmarks.md).
#   ./tools/step_instructions.sh [PERPO] [SHAPE] [ITERATIONS]
#   ./tools/step_instructions.sh /tmp/perpo-base tiny 20
# PERPO defaults to build/perpo, SHAPE to tiny, ITERATIONS to 20 (each phase runs ITERATIONS + 1
# times: perpo bench's warm-up step is counted too and divided in). One thread, no peer. Needs
# valgrind (Debian: valgrind); takes about four minutes for tiny.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
perpo="${1:-$root/build/perpo}"
shape="${2:-tiny}"
iterations="${3:-20}"
command -v valgrind >/dev/null || { echo "step_instructions.sh: valgrind is not installed" >&2; exit 1; }
[ -x "$perpo" ] || { echo "step_instructions.sh: no executable at $perpo" >&2; exit 1; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
  "$perpo" bench --shape "$shape" --no-peer --iterations "$iterations" --threads 1 \
  >"$out/bench.log" 2>&1 || { cat "$out/bench.log" >&2; exit 1; }
callgrind_annotate --inclusive=yes "$out/callgrind.out" >"$out/annotated.txt" 2>/dev/null
# The inclusive count of each phase's lambda (perpo's measure_train / measure_sampling).
count() {
  grep -E "measure_$1\(.*\)::\{lambda\(\)#1\}::operator\(\)\(\) const" "$out/annotated.txt" |
    head -1 | awk '{gsub(",", "", $1); print $1}'
}
train="$(count train)"
sample="$(count sampling)"
[ -n "$train" ] && [ -n "$sample" ] || { echo "step_instructions.sh: phases not found in the profile" >&2; exit 1; }
calls=$((iterations + 1))
echo "$perpo: shape $shape, one thread, $calls calls per phase"
echo "training step: $((train / calls)) instructions"
echo "sampled list: $((sample / calls)) instructions"
