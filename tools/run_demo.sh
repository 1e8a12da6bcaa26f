#!/usr/bin/env bash
# The main job on the built-in data, on CPU in a few minutes: generate toy ADE20K-format data,
# train SegFormer-B0 on it, evaluate mIoU and save prediction overlays.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
PY=.venv/bin/python
DATA=data/toy/ade20k
WORK=${WORK_DIR:-work_dirs/demo_mit-b0_toy-ade20k}
CONFIG=configs/segformer/mit-b0_toy-ade20k.py
[ -d "$DATA/ADEChallengeData2016" ] || $PY tools/misc/make_toy_data.py --format ade20k --out "$DATA"
$PY tools/train.py "$CONFIG" --work-dir "$WORK"
CKPT=$(cat "$WORK/last_checkpoint")
$PY tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK/test" --show-dir "$WORK/overlays" \
    --out "$WORK/pred_label_maps" | tee "$WORK/test.log"
echo
echo "== demo finished =="
echo "data:          $DATA"
echo "training log:  $(ls -d "$WORK"/2*/ 2>/dev/null | tail -n1)"
echo "checkpoint:    $CKPT"
echo "metrics:       $(grep -o 'aAcc.*' "$WORK/test.log" | tail -n1)"
echo "overlays:      $(find "$WORK/overlays" -name '*.png' | head -n1 | xargs -r dirname)"
echo "label maps:    $WORK/pred_label_maps"
