#!/usr/bin/env bash
# Create (or reuse) .venv/ in the repo root and install the pinned stack.
# mmcv 2.1.0 has no wheels on PyPI: it is built once from source with its ops
# and the wheel is cached in $MMSEG_EXT_WHEEL_CACHE (default ~/.cache/mmseg_ext/wheels).
# Set MMCV_CUDA=1 on a CUDA machine to compile the CUDA kernels too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
CACHE=${MMSEG_EXT_WHEEL_CACHE:-$HOME/.cache/mmseg_ext/wheels}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
MMCV_VERSION=2.1.0
mkdir -p "$CACHE"

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
stamp="$VENV/.installed-$(cat requirements.txt setup.cfg tools/setup_env.sh | sha1sum | cut -c1-12)"
if [ -f "$stamp" ]; then
  echo "[setup_env] $VENV is up to date"; exit 0
fi

$PIP install -q --upgrade pip
$PIP install -q "$TORCH_SPEC" 'setuptools<82' wheel ninja
if ! ls "$CACHE"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1; then
  echo "[setup_env] building mmcv $MMCV_VERSION with ops (takes ~7 min on 2 cores, done once)"
  tmp=$(mktemp -d)
  MMCV_WITH_OPS=1 FORCE_CUDA=${MMCV_CUDA:-0} MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    $PIP wheel -q --no-build-isolation --no-deps -w "$tmp" mmcv==$MMCV_VERSION
  mv "$tmp"/mmcv-*.whl "$CACHE"/
  rm -rf "$tmp"
fi
$PIP install -q "$CACHE"/mmcv-$MMCV_VERSION-*.whl -r requirements.txt
# panopticapi-lite declares numpy<2 but works with numpy 2; its one other need is Pillow.
$PIP install -q --no-deps panopticapi-lite==0.2.0
$PIP install -q --no-deps -e .
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "[setup_env] ready: $VENV"
