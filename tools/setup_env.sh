#!/usr/bin/env bash
# Create (or reuse) .venv/ in the repo root and install the pinned stack.
# torch is the standard build (`torch===2.13.0`, CUDA 13 libraries; runs on CPU too) with
# torchvision 0.28.0, which mmpretrain needs. TORCH_SPEC overrides it, e.g. a CPU-only install:
#   TORCH_SPEC='torch==2.13.0' bash tools/setup_env.sh   (then mmpretrain / ImageNet models are off)
# mmcv 2.1.0 has no wheels on PyPI: it is built once from source with its ops and the wheel is
# cached per torch build in $MMSEG_EXT_WHEEL_CACHE/torch-<version>[-cuda] (default
# ~/.cache/mmseg_ext/wheels). Set MMCV_CUDA=1 on a CUDA machine to compile the CUDA kernels too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
CACHE_ROOT=${MMSEG_EXT_WHEEL_CACHE:-$HOME/.cache/mmseg_ext/wheels}
TORCH_SPEC=${TORCH_SPEC:-torch===2.13.0 torchvision==0.28.0}
MMCV_VERSION=2.1.0

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
stamp="$VENV/.installed-$( (cat requirements.txt setup.cfg tools/setup_env.sh; echo "$TORCH_SPEC ${MMCV_CUDA:-0}") | sha1sum | cut -c1-12)"
if [ -f "$stamp" ]; then
  echo "[setup_env] $VENV is up to date"; exit 0
fi

$PIP install -q --upgrade pip
# shellcheck disable=SC2086  # TORCH_SPEC is a list of requirement words
$PIP install -q $TORCH_SPEC 'setuptools<82' wheel ninja
torch_build=$($VENV/bin/python -c 'import torch; print(torch.__version__)')
CACHE="$CACHE_ROOT/torch-$torch_build$([ "${MMCV_CUDA:-0}" = 1 ] && echo -cuda || true)"
mkdir -p "$CACHE"
if ! ls "$CACHE"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1; then
  echo "[setup_env] building mmcv $MMCV_VERSION with ops against torch $torch_build" \
       "(about 7-15 min on 2 cores, done once per torch build)"
  tmp=$(mktemp -d)
  MMCV_WITH_OPS=1 FORCE_CUDA=${MMCV_CUDA:-0} MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    $PIP wheel -q --no-build-isolation --no-deps -w "$tmp" mmcv==$MMCV_VERSION
  mv "$tmp"/mmcv-*.whl "$CACHE"/
  rm -rf "$tmp"
fi
$PIP install -q "$CACHE"/mmcv-$MMCV_VERSION-*.whl -r requirements.txt
# panopticapi-lite declares numpy<2 but works with numpy 2; its one other need is Pillow.
# mmpretrain 1.2.0 pins nothing we lack; --no-deps keeps it from pulling a second torch.
$PIP install -q --no-deps panopticapi-lite==0.2.0 mmpretrain==1.2.0
$PIP install -q --no-deps -e .
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "[setup_env] ready: $VENV (torch $torch_build)"
