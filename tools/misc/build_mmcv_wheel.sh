#!/usr/bin/env bash
# Build an mmcv wheel with its ops from an sdist, against the torch that $PYTHON imports.
#   bash tools/misc/build_mmcv_wheel.sh SDIST.tar.gz OUT_DIR
# Used by tools/setup_env.sh and tools/misc/gpu_check.sh. The caller's environment passes on
# FORCE_CUDA, MAX_JOBS, TORCH_CUDA_ARCH_LIST and PYTHONPATH. Needs setuptools<82 (mmcv's setup.py
# imports pkg_resources); --no-build-isolation, or the build sees no torch and silently skips the
# C++ ops; --no-cache-dir, as pip's cache keys a built wheel by the sdist, not by the torch.
set -euo pipefail
SDIST=${1:?usage: build_mmcv_wheel.sh SDIST OUT_DIR}
OUT_DIR=${2:?usage: build_mmcv_wheel.sh SDIST OUT_DIR}
PY=${PYTHON:-python3}
src_root=$(mktemp -d)
trap 'rm -rf "$src_root"' EXIT
tar xzf "$SDIST" -C "$src_root"
src=$(find "$src_root" -mindepth 1 -maxdepth 1 -type d)
# torch >= 2.15's headers need C++20; mmcv's setup.py appends -std=c++17 after torch's own -std
# flag, and the last one wins.
aten=$("$PY" -c 'import torch.utils.cpp_extension as c; print(c.include_paths()[0])')/ATen/ATen.h
if grep -qs 'C++20 or later' "$aten"; then
  sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
fi
mkdir -p "$OUT_DIR"
MMCV_WITH_OPS=1 "$PY" -m pip wheel -q --no-cache-dir --no-build-isolation --no-deps \
  -w "$OUT_DIR" "$src"
