#!/bin/bash
# perpo bench alone over thread counts and OpenMP wait settings, idle and with a shell busy loop on
# one more core (docs/benchmarks.md, "The thread policy"). Usage: tools/bench_threads.sh [perpo]
set -euo pipefail
bin=${1:-./build/perpo}
for shape in tiny small; do
  iterations=20
  [ "$shape" = small ] && iterations=2
  for load in idle busy; do
    busy=""
    if [ "$load" = busy ]; then
      (while :; do :; done) &
      busy=$!
    fi
    for setting in "1 -" "2 -" "2 GOMP_SPINCOUNT=10000" "2 GOMP_SPINCOUNT=1000" \
                   "2 OMP_WAIT_POLICY=passive" "0 -"; do
      read -r threads variable <<< "$setting"
      environment=()
      [ "$variable" != "-" ] && environment=("$variable")
      figures=$(env "${environment[@]}" "$bin" bench --shape "$shape" --no-peer \
                  --iterations "$iterations" --threads "$threads" --json 2>/dev/null |
                grep -E '"train.lists_per_s"|"sample.tokens_per_s"' |
                sed -E 's/.*"name": ?"([^"]+)", ?"value": ?([0-9.e+-]+).*/\1=\2/' | tr '\n' ' ')
      echo "$shape $load threads=$threads $variable: $figures"
    done
    [ -n "$busy" ] && kill "$busy"
  done
done
