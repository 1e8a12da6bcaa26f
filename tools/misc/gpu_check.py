"""Run the prepared GPU check's steps and write their results to one JSON (the steps, settings
and JSON: mmseg_ext/gpu_check.py). Started by tools/misc/gpu_check.sh, which installs the
bundle and builds mmcv first; see docs/install.md, "When a GPU is lent".

    python tools/misc/gpu_check.py --out work_dirs/gpu_check.json [--dry-run] [--steps NAME ...]
"""
import argparse
import json
from pathlib import Path


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='the JSON to write (step logs go to '
                        'OUT_STEM_logs/ beside it)')
    parser.add_argument('--work-dir', default='work_dirs/gpu_check',
                        help='scratch: toy data and the training work dirs')
    parser.add_argument('--dry-run', action='store_true',
                        help='on CPU, every step with the tiniest settings')
    parser.add_argument('--time-limit', type=float, default=600,
                        help='seconds; steps that would start later are recorded as skipped')
    parser.add_argument('--steps', nargs='+', help='run only these steps (default: all)')
    parser.add_argument('--mmcv-build', default='{"status": "skipped"}',
                        help="the mmcv build's record (JSON), from gpu_check.sh")
    return parser.parse_args()


def main():
    args = parse_args()
    from mmseg_ext.gpu_check import run_gpu_check
    run_gpu_check(Path(args.out), Path(args.work_dir), args.dry_run, args.time_limit,
                  json.loads(args.mmcv_build), args.steps)


if __name__ == '__main__':
    main()
