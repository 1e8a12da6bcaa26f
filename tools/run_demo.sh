#!/usr/bin/env bash
# The main job on the built-in data, on CPU in a few minutes: generate toy ADE20K-format data,
# train SegFormer-B0 on it, evaluate mIoU and save prediction overlays.
#
# Deterministic on CPU: a fixed seed (SEED, default 0), deterministic kernels and a fixed number
# of threads (OMP_NUM_THREADS, default 2: floating-point sums depend on how work is split between
# threads). The same command on the same kind of machine gives the same figures, bit for bit;
# another CPU type or library build can change the last bits, and training amplifies them, so
# compare across machines with several seeds: SEEDS="0 1 2" bash tools/run_demo.sh prints the
# mean and spread over the seeds. PREPARE_ONLY=1 sets up the environment and the data, then stops.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
PY=.venv/bin/python
DATA=data/toy/ade20k
BASE_WORK=${WORK_DIR:-work_dirs/demo_mit-b0_toy-ade20k}
CONFIG=configs/segformer/mit-b0_toy-ade20k.py
SEEDS=${SEEDS:-${SEED:-0}}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export MKL_NUM_THREADS=${MKL_NUM_THREADS:-$OMP_NUM_THREADS}
# The config's data: 200 train / 50 val images; a folder written with other counts is rewritten.
grep -qs '"train": 200,' "$DATA/toy_meta.json" && grep -qs '"val": 50$' "$DATA/toy_meta.json" || {
    rm -rf "$DATA"
    $PY tools/misc/make_toy_data.py --format ade20k --out "$DATA" --num-train 200 --num-val 50
}
[ -z "${PREPARE_ONLY:-}" ] || exit 0
LOGS=()
for SEED in $SEEDS; do
    WORK=$BASE_WORK
    [ "$SEEDS" = "0" ] || WORK=${BASE_WORK}_seed$SEED
    $PY tools/train.py "$CONFIG" --work-dir "$WORK" \
        --cfg-options randomness.seed="$SEED" randomness.deterministic=True
    CKPT=$(cat "$WORK/last_checkpoint")
    $PY tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK/test" --show-dir "$WORK/overlays" \
        --out "$WORK/pred_label_maps" | tee "$WORK/test.log"
    LOGS+=("$WORK/test.log")
    echo
    echo "== demo finished (seed $SEED, $OMP_NUM_THREADS threads) =="
    echo "data:          $DATA"
    echo "training log:  $(ls -d "$WORK"/2*/ 2>/dev/null | tail -n1)"
    echo "checkpoint:    $CKPT"
    echo "metrics:       $(grep -o 'aAcc.*' "$WORK/test.log" | tail -n1)"
    echo "overlays:      $(find "$WORK/overlays" -name '*.png' | head -n1 | xargs -r dirname)"
    echo "label maps:    $WORK/pred_label_maps"
done
if [ "${#LOGS[@]}" -gt 1 ]; then
    $PY - "${LOGS[@]}" <<'EOF'
import re, statistics, sys
runs = [{k: float(v) for k, v in re.findall(r'(aAcc|mIoU|mAcc): ([\d.]+)', open(p).read())}
        for p in sys.argv[1:]]
print(f'\n== {len(runs)} seeds: mean (sample std, min-max) ==')
for key in ('mIoU', 'mAcc', 'aAcc'):
    values = [run[key] for run in runs]
    print(f'{key}: {statistics.mean(values):.2f} ({statistics.stdev(values):.2f}, '
          f'{min(values):.2f}-{max(values):.2f})  per seed: {values}')
EOF
fi
