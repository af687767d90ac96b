#!/usr/bin/env bash
# Install everything this project needs on a Debian/Ubuntu machine:
# system packages (sudo only when not root), a virtual environment in .venv,
# and this checkout as the package vocal_melody (editable) with the extras of
# pyproject.toml that the tools, benchmarks and tests use. Safe to run again.
#   bash install.sh --all    # also the optional Ray and JAX extras and the benchmark's peers
#   bash install.sh --peers  # the benchmark's peers (CPU torch, Spleeter, SwiftF0, FCPE) without Ray and JAX
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(ffmpeg sox libsox-fmt-all libsndfile1 espeak-ng fluidsynth fluid-soundfont-gm)
PYTHON="${PYTHON:-python3}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing system packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "creating virtual environment .venv"
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        "$PYTHON" -m venv .venv
    fi
fi
EXTRAS="tf,plot,training,synthesis,quantize,benchmarks,dev"
if [ "${1:-}" = "--all" ]; then
    EXTRAS="$EXTRAS,ray,jax,peers"
elif [ "${1:-}" = "--peers" ]; then
    EXTRAS="$EXTRAS,peers"
fi
echo "installing vocal_melody[$EXTRAS] into .venv"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"
case "$EXTRAS" in
    *peers*) .venv/bin/python -m pip install -q --no-deps "torchfcpe==0.0.4" ;;  # its torchaudio: bench/peers.py
esac
echo "ready: .venv/bin/python melodyExtraction_NS.py -p audio/"
