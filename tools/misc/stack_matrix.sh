#!/usr/bin/env bash
# The compatibility matrix (docs/compatibility.md): one environment per stack, the smoke set of
# tools/misc/stack_smoke.py in each, one JSON line per cell in $OUT (default
# work_dirs/stack_matrix.jsonl). Not part of CI: each new torch build compiles mmcv (7-30 min).
#   CELLS="upstream:2.7.1 upstream:2.15.0 onedl:2.7.1 onedl:2.15.0" (default)
#   MATRIX_ROOT=/tmp/stack_matrix   where the environments go (about 5 GB each)
set -euo pipefail
cd "$(dirname "$0")/../.."
CELLS=${CELLS:-upstream:2.7.1 upstream:2.15.0 onedl:2.7.1 onedl:2.15.0}
ROOT=${MATRIX_ROOT:-/tmp/stack_matrix}
OUT=${OUT:-work_dirs/stack_matrix.jsonl}
mkdir -p "$ROOT" "$(dirname "$OUT")"
for cell in $CELLS; do
  stack=${cell%%:*} torch=${cell##*:}
  venv="$ROOT/$stack-torch-$torch" log="$ROOT/$stack-torch-$torch.log"
  echo "[stack_matrix] $stack, torch $torch: $venv (log $log)"
  start=$(date +%s)
  if ! STACK=$stack TORCH_VERSION=$torch VENV=$venv bash tools/setup_env.sh >"$log" 2>&1; then
    printf '{"stack": "%s", "torch": "%s", "ok": false, "setup": "failed, see %s"}\n' \
      "$stack" "$torch" "$log" | tee -a "$OUT"
    continue
  fi
  setup_s=$(( $(date +%s) - start ))
  # PYTHONPATH: this checkout's package, whatever the environment's editable install points at.
  smoke=$(PYTHONPATH="$PWD" "$venv/bin/python" tools/misc/stack_smoke.py 2>>"$log" | tail -n1) ||
    smoke='{"ok": false, "smoke": "crashed, see log"}'
  printf '{"stack": "%s", "torch": "%s", "setup_s": %s, "date": "%s", "cpu": "%s", "smoke": %s}\n' \
    "$stack" "$torch" "$setup_s" "$(date -u +%F)" \
    "$(lscpu | sed -n 's/^Model name: *//p') $(grep -o -m1 avx512f /proc/cpuinfo || echo no-avx512)" \
    "${smoke:-null}" | tee -a "$OUT"
done
