#!/usr/bin/env bash
# Sets up everything (tools/setup.sh), builds perpo and its tests, runs every test with CTest.
#   ./tools/test.sh                  all tests
#   ./tools/test.sh -R config        only tests whose name matches (ctest -R)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup.sh"
"$root/tools/build.sh"
build_dir="${BUILD_DIR:-$root/build}"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" "$@"
