#!/usr/bin/env bash
# Sets up everything perpo needs to build, on Debian 12 or 13. Idempotent: re-running it only
# installs what is missing.
#
#   ./tools/setup.sh              system packages + LibTorch (pip torch into .venv)
#   ./tools/setup.sh --fixtures   also the Python packages that regenerate test fixtures and
#                                 that perpo bench's peer needs (transformers)
#
# Use your own LibTorch instead of the pip one by setting PERPO_LIBTORCH (a LibTorch folder or its
# share/cmake), Torch_DIR or CMAKE_PREFIX_PATH before running this script.
set -euo pipefail

TORCH_VERSION="2.13.0"
FIXTURE_PIP_PACKAGES=(numpy "transformers>=4.45,<5" tokenizers safetensors sentencepiece protobuf pillow)
# LLaVA's own code, the reference for prompt fidelity (conv templates, tokenizer_image_token,
# preprocess_v1); --no-deps: its pinned torch/transformers are not wanted, only these modules.
FIXTURE_NODEPS_PACKAGES=("llava-torch==1.2.2.post1")
APT_PACKAGES=(
  build-essential cmake ninja-build ccache git pkg-config python3-venv
  libsentencepiece-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libyaml-cpp-dev
  libstb-dev libutf8proc-dev libpcre2-dev libgloo-dev libgtest-dev libgmock-dev libbenchmark-dev
  fonts-dejavu-core gnuplot-nox clang-format
)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want_fixtures=0
for arg in "$@"; do
  case "$arg" in
    --fixtures) want_fixtures=1 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { echo "[setup] $*"; }

# --- system packages -------------------------------------------------------------------------
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
    echo "setup.sh: not root and no sudo; install these Debian packages by hand: ${APT_PACKAGES[*]}" >&2
  fi
fi
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages: all present"
fi

# --- LibTorch ---------------------------------------------------------------------------------
venv="$root/.venv"
user_torch="${PERPO_LIBTORCH:-${Torch_DIR:-}}"
if [ -n "$user_torch" ]; then
  say "LibTorch: using yours at $user_torch"
elif [ -n "${CMAKE_PREFIX_PATH:-}" ] && ls "${CMAKE_PREFIX_PATH%%:*}"/Torch/TorchConfig.cmake >/dev/null 2>&1; then
  say "LibTorch: using yours from CMAKE_PREFIX_PATH=$CMAKE_PREFIX_PATH"
else
  if [ ! -x "$venv/bin/python" ]; then
    say "creating virtual environment $venv"
    python3 -m venv "$venv"
  fi
  if ! "$venv/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('$TORCH_VERSION') else 1)" 2>/dev/null; then
    say "installing torch==$TORCH_VERSION (CPU) into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "torch==$TORCH_VERSION"
  fi
  say "LibTorch: $("$venv/bin/python" -c 'import torch; print(torch.__version__, torch.utils.cmake_prefix_path)')"
fi

if [ "$want_fixtures" -eq 1 ]; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  say "installing fixture tools: ${FIXTURE_PIP_PACKAGES[*]}"
  "$venv/bin/pip" install -q --disable-pip-version-check "${FIXTURE_PIP_PACKAGES[@]}"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps "${FIXTURE_NODEPS_PACKAGES[@]}"
fi
say "done"
