#!/usr/bin/env bash
# Check the demo's README figure on both CPU code paths (not part of the test suite; about
# 25 minutes on 2 idle cores): run the demo config (tools/run_demo.sh) for seeds 0, 1, 2 on the
# machine's own path and on the AVX2 path forced through the environment, print the table and
# exit non-zero unless each path's mean mIoU lies in the range the README states.
#   SEEDS         seeds per path (default "0 1 2")
#   PATHS         which paths to run (default "native avx2")
#   WORK_DIR      where the runs go (default work_dirs/check_demo_figure)
#   JOBS          runs at once (default 1; each uses OMP_NUM_THREADS threads, default 2)
#   RUN=0         only check the runs already in WORK_DIR
# On a machine without AVX-512 both paths are the AVX2 path. The OpenMP threads wait passively
# (OMP_WAIT_POLICY, which does not change any result): on a shared machine spinning threads
# slow a run down several times.
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS=${SEEDS:-0 1 2}
PATHS=${PATHS:-native avx2}
BASE=${WORK_DIR:-work_dirs/check_demo_figure}
JOBS=${JOBS:-1}
RUN=${RUN:-1}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
RANGE=$(grep -o 'mean mIoU over seeds 0, 1, 2 lies in [0-9.]*-[0-9.]*' README.md | head -n1 \
        | grep -o '[0-9.]*-[0-9.]*$') || {
    echo "README.md states no range ('mean mIoU over seeds 0, 1, 2 lies in LO-HI')" >&2; exit 2; }
run() {  # path seed: one demo run, its output in $BASE/<path>_seed<seed>.log
    local isa=()
    [ "$1" = native ] || isa=(ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2)
    env "${isa[@]}" SEEDS="$2" WORK_DIR="$BASE/$1" bash tools/run_demo.sh >"$BASE/$1_seed$2.log" 2>&1
}
for path in $PATHS; do
    case "$path" in native|avx2) ;; *) echo "PATHS takes 'native' and 'avx2', not '$path'" >&2; exit 2 ;; esac
done
if [ "$RUN" = 1 ]; then
    mkdir -p "$BASE"
    PREPARE_ONLY=1 bash tools/run_demo.sh
    failed=0
    for path in $PATHS; do
        for seed in $SEEDS; do
            run "$path" "$seed" &
            while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || failed=1; done
        done
    done
    while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
    [ "$failed" = 0 ] || { echo "a run failed: see $BASE/*_seed*.log" >&2; exit 1; }
fi
.venv/bin/python - "$RANGE" "$BASE" $PATHS <<'EOF'
import glob, os, platform, re, statistics, subprocess, sys

low, high = map(float, sys.argv[1].split('-'))
base, paths = sys.argv[2], sys.argv[3:]
cpu = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo')
            if line.startswith('model name')), platform.processor())
avx512 = 'avx512f' in open('/proc/cpuinfo').read()
isa = {path: subprocess.run(
    ['.venv/bin/python', '-c', 'import torch; print(torch.backends.cpu.get_cpu_capability())'],
    env=os.environ if path == 'native' else dict(os.environ, ATEN_CPU_CAPABILITY='avx2'),
    capture_output=True, text=True).stdout.strip() for path in paths}
print(f'\nCPU: {cpu}, AVX-512: {"yes" if avx512 else "no"}; README range of the mean mIoU: '
      f'{low:.2f}-{high:.2f}')
print(f'{"path":<8} {"ATen":<7} {"mIoU per seed":<26} {"mean":>6} {"std":>5} {"mAcc":>6} '
      f'{"aAcc":>6}  check')
failed = False
for path in paths:
    logs = sorted(glob.glob(f'{base}/{path}/test.log') + glob.glob(f'{base}/{path}_seed*/test.log'))
    runs = [{k: float(v) for k, v in re.findall(r'(aAcc|mIoU|mAcc): ([\d.]+)', open(p).read())}
            for p in logs]
    miou = [run['mIoU'] for run in runs]
    mean = statistics.mean(miou)
    ok = low <= mean <= high
    failed |= not ok
    print(f'{path:<8} {isa[path]:<7} {" ".join(f"{v:.2f}" for v in miou):<26} {mean:6.2f} '
          f'{statistics.stdev(miou) if len(miou) > 1 else 0:5.2f} '
          f'{statistics.mean(r["mAcc"] for r in runs):6.2f} '
          f'{statistics.mean(r["aAcc"] for r in runs):6.2f}  {"ok" if ok else "OUT OF RANGE"}')
sys.exit(1 if failed else 0)
EOF
