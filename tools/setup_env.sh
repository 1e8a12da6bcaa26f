#!/usr/bin/env bash
# Create (or reuse) .venv/ in the repo root and install the pinned stack (docs/install.md).
#   TORCH_VERSION  the torch pin (one line below); torchvision follows from TORCHVISION_FOR.
#   STACK          upstream (default: mmengine/mmcv/mmseg/mmdet/mmpretrain as released by
#                  OpenMMLab) or onedl (the maintained OneDL forks, same import names).
#   MMCV_CUDA=1    compile mmcv's CUDA kernels too (on a CUDA machine).
#   VENV           where the environment goes (default .venv).
# mmcv has no wheels on PyPI: it is built once from its sdist, with its ops, against the installed
# torch, and the wheel is cached per (stack, torch build, CUDA) in $MMSEG_EXT_WHEEL_CACHE
# (default ~/.cache/mmseg_ext/wheels). pip's own cache is bypassed (--no-cache-dir): it keys a
# built wheel by the sdist, not by the torch it was compiled against.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
STACK=${STACK:-upstream}
TORCH_VERSION=${TORCH_VERSION:-2.15.0}
declare -A TORCHVISION_FOR=([2.15.0]=0.29.2 [2.14.1]=0.29.1 [2.13.0]=0.28.0 [2.7.1]=0.22.1 [2.6.0]=0.21.0)
TORCHVISION_VERSION=${TORCHVISION_VERSION:-${TORCHVISION_FOR[$TORCH_VERSION]}}
CACHE_ROOT=${MMSEG_EXT_WHEEL_CACHE:-$HOME/.cache/mmseg_ext/wheels}
case "$STACK" in
  upstream) MMCV=mmcv==2.1.0 ;;
  onedl) MMCV=onedl-mmcv==2.3.6 ;;
  *) echo "[setup_env] STACK must be 'upstream' or 'onedl', not '$STACK'" >&2; exit 2 ;;
esac
# A machine-wide pip constraint (pip config) must not hold back the pin; users have none.
export PIP_CONSTRAINT=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
stamp="$VENV/.installed-$( (cat requirements/*.txt setup.cfg tools/setup_env.sh
  echo "$STACK $TORCH_VERSION $TORCHVISION_VERSION ${MMCV_CUDA:-0}") | sha1sum | cut -c1-12)"
if [ -f "$stamp" ]; then
  echo "[setup_env] $VENV is up to date"; exit 0
fi

$PIP install -q --upgrade pip
# `===` picks the standard build (CUDA libraries bundled; runs on CPU too): torchvision exists
# only as that build, and mmpretrain imports it. setuptools: < 82 keeps the pkg_resources that
# mmcv's setup.py imports; >= 77 reads onedl-mmcv's PEP 639 licence string (a venv's own 65.5
# stays otherwise, where torch does not ask for a newer one).
$PIP install -q "torch===$TORCH_VERSION" "torchvision===$TORCHVISION_VERSION" \
  'setuptools>=77,<82' wheel ninja
torch_build=$($VENV/bin/python -c 'import torch; print(torch.__version__)')
CACHE="$CACHE_ROOT/$STACK-torch-$torch_build$([ "${MMCV_CUDA:-0}" = 1 ] && echo -cuda || true)"
mkdir -p "$CACHE"
if ! ls "$CACHE"/*mmcv-*.whl >/dev/null 2>&1; then
  echo "[setup_env] building $MMCV with ops against torch $torch_build" \
       "(7-30 min on 2 cores, once per torch build)"
  tmp=$(mktemp -d)
  $PIP download -q --no-deps --no-binary :all: --no-build-isolation -d "$tmp" "$MMCV"
  FORCE_CUDA=${MMCV_CUDA:-0} MAX_JOBS=${MAX_JOBS:-$(nproc)} PYTHON=$VENV/bin/python \
    bash tools/misc/build_mmcv_wheel.sh "$tmp"/*.tar.gz "$tmp/dist"
  mv "$tmp"/dist/*.whl "$CACHE"/
  rm -rf "$tmp"
fi
$PIP install -q "$CACHE"/*mmcv-*.whl -r "requirements/$STACK.txt" -r requirements/common.txt
# panopticapi-lite declares numpy<2 but works with numpy 2; its one other need is Pillow.
$PIP install -q --no-deps panopticapi-lite==0.2.0
$PIP install -q --no-deps -e .
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "[setup_env] ready: $VENV (stack $STACK, torch $torch_build)"
