#!/usr/bin/env bash
# Sets up everything (tools/setup.sh), builds perpo, and runs the demo on this CPU: synthetic
# grounding data (OCR too with --set tasks=grounding,ocr) -> tiny tokenizer -> SFT from scratch
# -> sampled lists -> SFT / DPO / PerPO arms from the same start -> evaluation -> table,
# summary.json, report.md with plots.
#   ./tools/demo.sh [perpo demo flags, e.g. --quick --out DIR --seed S]
# The demo's output folder defaults to runs/demo; running again reuses every finished stage.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup.sh"
"$root/tools/build.sh" --target perpo_cli
perpo="${BUILD_DIR:-$root/build}/perpo"
"$perpo" --version
cd "$root"
time "$perpo" demo "$@"
