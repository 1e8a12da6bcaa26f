#!/usr/bin/env bash
# The prepared GPU check (docs/install.md, "When a GPU is lent"). On the lent GPU machine (no
# network), in the repo root, with .gpu_bundle/ (tools/misc/gpu_bundle.sh) carried along:
#   bash tools/misc/gpu_check.sh             # install the bundle, build mmcv's CUDA ops, run the steps
#   bash tools/misc/gpu_check.sh --dry-run   # on CPU: no install, no build, the tiniest settings
# Options: --work-dir DIR (scratch, default work_dirs/gpu_check). Writes $OUT/gpu_check.json when
# $OUT is set, else work_dirs/gpu_check.json, and the steps' logs beside it (the steps:
# mmseg_ext/gpu_check.py). Time: the whole run gets GPU_CHECK_SECONDS (default 540; 3600
# in the dry run); the mmcv build is time-boxed to MMCV_BUILD_SECONDS (default 330) and recorded
# either way; the steps get what is left. PYTHON: the interpreter (default: the GPU machine's
# /opt/torch/.venv/bin/python3; in the dry run .venv/bin/python; else python3).
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
DRY_RUN=0
WORK_DIR=work_dirs/gpu_check
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --work-dir) WORK_DIR=${2:?--work-dir needs a directory}; shift ;;
    *) echo "[gpu_check] unknown option '$1'; usage: gpu_check.sh [--dry-run] [--work-dir DIR]" >&2
       exit 2 ;;
  esac
  shift
done
JSON=${OUT:+$OUT/gpu_check.json}
JSON=${JSON:-work_dirs/gpu_check.json}
TOTAL=${GPU_CHECK_SECONDS:-540}
if [ "$DRY_RUN" = 1 ]; then candidates=(.venv/bin/python); else candidates=(/opt/torch/.venv/bin/python3); fi
for candidate in "${PYTHON:-}" "${candidates[@]}" python3; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null; then PY=$candidate; break; fi
done
mkdir -p "$(dirname "$JSON")" "$WORK_DIR"
start=$SECONDS

if [ "$DRY_RUN" = 1 ]; then
  # one thread per step: the CPU machines are small and shared
  export CUDA_VISIBLE_DEVICES='' OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
  # the time budget is the GPU's; a loaded CPU machine gets an hour unless told otherwise
  exec "$PY" tools/misc/gpu_check.py --dry-run --out "$JSON" --work-dir "$WORK_DIR" \
    --time-limit "${GPU_CHECK_SECONDS:-3600}"
fi

SITE=$(cd "$WORK_DIR" && pwd)/site
MMCV_LOG=${JSON%.json}_mmcv_build.log
export PYTHONPATH=$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}
if ! ls .gpu_bundle/*.whl >/dev/null 2>&1; then
  echo "[gpu_check] no .gpu_bundle/*.whl: run tools/misc/gpu_bundle.sh on a machine with the" \
       "registries and carry .gpu_bundle/ along" >&2
  exit 1
fi
arch=$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())') || arch=
"$PY" -m pip install -q --no-index --no-deps --target "$SITE" .gpu_bundle/*.whl > "$MMCV_LOG" 2>&1
installed=$?
build_start=$SECONDS
if [ "$installed" != 0 ]; then
  status=error  # the bundle's log: the steps will fail on their imports, and say so
elif [ -z "$arch" ]; then
  status=error
  echo "no CUDA device visible to torch" > "$MMCV_LOG"
else
  echo "[gpu_check] installed .gpu_bundle/ into $SITE; building mmcv 2.1.0 with CUDA ops for" \
       "sm_$arch (at most ${MMCV_BUILD_SECONDS:-330} s)"
  TORCH_CUDA_ARCH_LIST=$arch FORCE_CUDA=1 MAX_JOBS=$(nproc) PYTHON=$PY \
    timeout "${MMCV_BUILD_SECONDS:-330}" bash tools/misc/build_mmcv_wheel.sh \
    .gpu_bundle/mmcv-2.1.0.tar.gz "$WORK_DIR/mmcv_dist" > "$MMCV_LOG" 2>&1
  case $? in
    0) status=ok ;;
    124) status=timeout ;;
    *) status=error ;;
  esac
  if [ "$status" = ok ]; then
    "$PY" -m pip install -q --no-index --no-deps --target "$SITE" "$WORK_DIR"/mmcv_dist/*.whl \
      >> "$MMCV_LOG" 2>&1 || status=error
  fi
fi
echo "[gpu_check] mmcv build: $status after $((SECONDS - build_start)) s (log $MMCV_LOG)"
"$PY" tools/misc/gpu_check.py --out "$JSON" --work-dir "$WORK_DIR" \
  --time-limit $((TOTAL - (SECONDS - start) - 10)) \
  --mmcv-build "{\"status\": \"$status\", \"seconds\": $((SECONDS - build_start)),
                 \"arch\": \"$arch\", \"jobs\": $(nproc), \"log\": \"$MMCV_LOG\"}"
