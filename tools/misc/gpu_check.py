"""Run the prepared GPU check's steps and write their results to one JSON (the steps, settings
and JSON: mmseg_ext/utils/gpu_check.py). Started by tools/misc/gpu_check.sh, which installs the
bundle and builds mmcv first; see docs/install.md, "When a GPU is lent".

    python tools/misc/gpu_check.py --out work_dirs/gpu_check.json [--dry-run] [--steps NAME ...]
"""
import argparse
import importlib.util
import json
import socket
from pathlib import Path


def _load_gpu_check():
    """Load mmseg_ext/utils/gpu_check.py by path: importing the package needs the whole
    OpenMMLab stack, whose failure to import the check must record, not die of."""
    path = Path(__file__).resolve().parents[2] / 'mmseg_ext' / 'utils' / 'gpu_check.py'
    spec = importlib.util.spec_from_file_location('mmseg_ext_gpu_check', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def main():
    args = parse_args()
    check = _load_gpu_check()
    report = check.run_check(Path(args.out), Path(args.work_dir), args.dry_run, args.time_limit,
                             json.loads(args.mmcv_build), free_port(), args.steps)
    failed = [name for name, step in report['steps'].items() if step['status'] != 'ok']
    print(f'[gpu_check] wrote {args.out}: {len(report["steps"]) - len(failed)} of '
          f'{len(report["steps"])} steps ok' + (f'; not ok: {" ".join(failed)}' if failed else ''))


if __name__ == '__main__':
    main()
