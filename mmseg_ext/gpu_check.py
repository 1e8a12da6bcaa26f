"""The prepared GPU check of tools/misc/gpu_check.sh (docs/install.md, "When a GPU is lent").

:func:`check_steps` lists the steps, :func:`run_check` runs them one after another, each in its
own process with its own timeout, and writes every step's result (or the tail of its output) to
one JSON after each step, so that a run cut short keeps what it measured:

* ``toy_*``: the built-in toy data (tools/misc/make_toy_data.py, make_toy_text.py,
  prepare_char_lm_data.py) in the scratch directory, where the toy configs' relative
  ``data/...`` roots find it;
* ``fps_mit-b0`` .. ``fps_mit-b5``: tools/analysis_tools/benchmark.py, random init, the ADE20K
  configs at 512 x 512 (B5 at 640 x 640);
* ``train_segformer``, ``train_panoptic``, ``train_ls_char_lm``, ``train_classifier``:
  ``tools/train.py CONFIG --amp``, a few iterations on the toy data (validation at the end);
* ``ls_attention``: tests/test_ls_attention_device.py on the device (forward and backward
  against the dense references of the official equations); ``ls_attention_speed``:
  tools/analysis_tools/benchmark_ls_attention.py on the device;
* ``dist_train``: ``tools/dist_train.sh CONFIG 1`` (nccl on a GPU).

The dry run (CPU) runs every step with the tiniest settings (1-2 iterations, 64 x 64 inputs,
gloo; no ``--amp``, as mmengine's AmpOptimWrapper needs a GPU). Its steps are forked from this
process after it imported the stack once (a fresh interpreter costs about 8 s of CPU per step);
on a GPU every step is a fresh interpreter, so that a broken CUDA context stays in its step.

Only the standard library at module level (and this module is not in a subpackage whose
``__init__`` imports torch), so that the check starts, and records why, even where the
OpenMMLab stack cannot be imported.
"""
import json
import math
import os
import platform
import re
import runpy
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Characters of a failed step's output kept in the JSON.
TAIL = 3000


@dataclass
class Step:
    """``argv``: a ``.py`` script (run as ``python SCRIPT ARGS``), ``['-m', MODULE, ...]`` or a
    ``.sh`` script (run with bash); ``parse`` turns the output of a successful run into the
    step's result (raising if the output lacks it)."""
    name: str
    argv: list
    timeout: float
    parse: Callable[[str], dict] | None = None
    env: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------- parsers
def parse_fps(out: str) -> dict:
    """benchmark.py's last line: ``Average fps of N runs: X``."""
    found = re.findall(r'Average fps of (\d+) runs: ([\d.]+)', out)
    if not found:
        raise ValueError("no 'Average fps of N runs: X' line")
    return dict(fps=float(found[-1][1]), runs=int(found[-1][0]))


def parse_train(out: str) -> dict:
    """mmengine's training log: the last logged iteration's loss, time and memory, and the
    metrics of the last validation."""
    rows = [line for line in out.splitlines() if '(train)' in line]
    losses = [(line, re.search(r'\bloss: (\S+)', line)) for line in rows]
    losses = [(line, float(m.group(1))) for line, m in losses if m]
    if not losses:
        raise ValueError('no training iteration with a loss was logged')
    line, loss = losses[-1]
    if not math.isfinite(loss):
        raise ValueError(f'the last loss is {loss}')
    result = dict(iterations_logged=len(losses), last_loss=loss,
                  iter=re.search(r'\(train\)\s*(\[[^\]]*\](?:\s*\[[^\]]*\])?)', line).group(1))
    for key, pattern in (('s_per_iter', r'\btime: (\S+)'), ('memory_mb', r'\bmemory: (\d+)')):
        m = re.search(pattern, line)
        if m:
            result[key] = float(m.group(1))
    val = [line for line in out.splitlines()  # the metrics line of a finished validation
           if re.search(r'\(val\)\s*(\[\d+\])?\s*\[(\d+)/\2\]', line) and 'eta:' not in line]
    if val:
        metrics = re.sub(r'.*\(val\)\s*(\[\d+\])?\s*\[[^\]]*\]\s*', '', val[-1])
        result['val'] = re.sub(r'\s*data_time: .*$', '', metrics).strip()
    return result


def parse_pytest(out: str) -> dict:
    m = re.search(r'(\d+) passed', out)
    if not m:
        raise ValueError("no 'N passed' line")
    return dict(passed=int(m.group(1)))


def parse_ls_speed(out: str) -> dict:
    """benchmark_ls_attention.py's tables: case -> size -> our time and peak memory."""
    result, case = {}, None
    for line in out.splitlines():
        if line.startswith('### '):
            case = result.setdefault(line[4:].strip(), {})
        elif case is not None and re.match(r'\| \d', line):
            cells = [c.strip() for c in line.strip('|').split('|')]
            case[cells[0]] = dict(ms=float(cells[1]), peak_mib=float(cells[4]))
    if not any(result.values()):
        raise ValueError('no timing table')
    return result


# --------------------------------------------------------------------------------- steps
FPS_CASES = [('mit-b0', 'mit-b0_ade20k.py', 512), ('mit-b1', 'mit-b1_ade20k.py', 512),
             ('mit-b2', 'mit-b2_ade20k.py', 512), ('mit-b3', 'mit-b3_ade20k.py', 512),
             ('mit-b4', 'mit-b4_ade20k.py', 512), ('mit-b5', 'mit-b5_ade20k-640.py', 640)]
#: family -> (config, the options that give it a few iterations)
TRAIN_CASES = {
    'segformer': ('configs/segformer/mit-b0_toy-ade20k.py', 'iters'),
    'panoptic': ('configs/panoptic_segformer/panoptic-segformer_r18_toy-coco-panoptic.py',
                 'epoch'),
    'ls_char_lm': ('configs/ls_transformer/ls-char-lm_toy-text.py', 'iters'),
    'classifier': ('configs/ls_transformer/vil-ls-small_toy-in1k.py', 'epoch'),
}
def check_steps(dry_run: bool, port: int) -> list:
    """The check's steps; ``dry_run``: the tiniest settings, on CPU."""
    tools = REPO / 'tools'
    misc = tools / 'misc'
    if dry_run:
        toy = dict(ade20k=['--num-train', '4', '--num-val', '2', '--size', '64', '64'],
                   coco=['--num-train', '4', '--num-val', '2'],
                   imagenet=['--num-train', '4', '--num-val', '2'])
        text_size, split_size = 20000, 2000
    else:
        toy = dict(ade20k=[], coco=[], imagenet=[])
        text_size, split_size = 300000, 15000
    steps = [
        Step('toy_ade20k', [misc / 'make_toy_data.py', '--format', 'ade20k',
                            '--out', 'data/toy/ade20k', *toy['ade20k']], 120),
        Step('toy_coco_panoptic', [misc / 'make_toy_data.py', '--format', 'coco-panoptic',
                                   '--out', 'data/toy_coco_panoptic', *toy['coco']], 120),
        Step('toy_imagenet', [misc / 'make_toy_data.py', '--format', 'imagenet',
                              '--out', 'data/toy/imagenet', *toy['imagenet']], 120),
        Step('toy_text', [misc / 'make_toy_text.py', '--out', 'data/toy_text/toy_text',
                          '--size', str(text_size)], 60),
        Step('toy_text_split', [misc / 'prepare_char_lm_data.py', 'data/toy_text/toy_text',
                                '--corpus', 'enwik8', '--valid-size', str(split_size),
                                '--test-size', str(split_size), '--out', 'data/toy_text'], 120),
    ]
    for name, config, size in FPS_CASES:
        shape = ['--shape', '64', '64', '--num-iters', '1', '--warmup', '0'] if dry_run else \
            ['--shape', str(size), str(size), '--repeat-times', '3']
        steps.append(Step(f'fps_{name}', [tools / 'analysis_tools' / 'benchmark.py',
                                          REPO / 'configs' / 'segformer' / config, *shape],
                          90, parse_fps))
    for family, (config, loop) in TRAIN_CASES.items():
        steps.append(Step(f'train_{family}', [tools / 'train.py', REPO / config,
                                              *train_options(family, loop, dry_run)],
                          240, parse_train))
    device = 'cpu' if dry_run else 'cuda'
    steps += [
        Step('ls_attention', ['-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                              REPO / 'tests' / 'test_ls_attention_device.py'], 180, parse_pytest,
             env=dict(MMSEG_EXT_TEST_DEVICE=device, PYTEST_ADDOPTS='')),  # not the caller's
        Step('ls_attention_speed', [tools / 'analysis_tools' / 'benchmark_ls_attention.py',
                                    '--device', device,
                                    *(['--cases', '1d', '--repeats', '1', '--malloc', 'default']
                                      if dry_run else ['--repeats', '10'])],
             180, parse_ls_speed),
        Step('dist_train', [tools / 'dist_train.sh', REPO / TRAIN_CASES['segformer'][0], '1',
                            *train_options('dist_train', 'iters', dry_run, amp=False),
                            'env_cfg.dist_cfg.backend=' + ('gloo' if dry_run else 'nccl')],
             240, parse_train, env=dict(PORT=str(port), PYTHON=sys.executable)),
    ]
    return steps


def train_options(name: str, loop: str, dry_run: bool, amp: bool = True) -> list:
    """``--amp`` (not on CPU) and a few iterations: ``iters`` loops stop after N iterations,
    ``epoch`` loops after one epoch of the toy data; no checkpoints, validation at the end."""
    n = 2 if dry_run else 20
    options = ['--work-dir', f'work_dirs/{name}'] + (['--amp'] if amp and not dry_run else [])
    options += ['--cfg-options', 'default_hooks.checkpoint.save_last=False',
                'default_hooks.logger.interval=1']
    if loop == 'iters':
        options += [f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n}',
                    f'default_hooks.checkpoint.interval={n + 1}']
    else:
        options += ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                    'default_hooks.checkpoint.interval=2']
    if dry_run:
        options += [f'{loader}.{key}' for loader in ('train_dataloader', 'val_dataloader')
                    for key in ('num_workers=0', 'persistent_workers=False')]
        options += ['train_dataloader.batch_size=2']
    return options


# ------------------------------------------------------------------------------- running
def run_step(step: Step, cwd: Path, log: Path, fork: bool, timeout: float) -> dict:
    """Run one step; its record: status (ok / error / timeout), seconds, command, log, and the
    parsed result or the error (the output's tail)."""
    argv = [str(a) for a in step.argv]
    runner = 'bash' if argv[0].endswith('.sh') else 'python'
    record = dict(command=' '.join([runner, *argv]), log=str(log))
    start = time.perf_counter()
    pid = _start(argv, cwd, log, step.env, fork)
    code, record['cpu_seconds'] = _wait(pid, timeout)
    record['seconds'] = round(time.perf_counter() - start, 1)
    out = log.read_text(errors='replace') if log.exists() else ''
    if code is None:
        record.update(status='timeout', error=f'killed after {timeout:.0f} s\n' + out[-TAIL:])
    elif code != 0:
        record.update(status='error', error=f'exit code {code}\n' + out[-TAIL:])
    else:
        try:
            record.update(status='ok', result=step.parse(out) if step.parse else {})
        except ValueError as e:
            record.update(status='error', error=f'unexpected output: {e}\n' + out[-TAIL:])
    return record


def _start(argv: list, cwd: Path, log: Path, env: dict, fork: bool) -> int:
    """A child in its own process group, its output in ``log``: ``argv`` run inside the forked
    child (``fork``, Python steps only) or by a fresh interpreter / bash."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setpgrp()
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        # a caller may have replaced sys.stdout / sys.stderr (pytest's capture does)
        sys.stdout = open(1, 'w', buffering=1, closefd=False)
        sys.stderr = open(2, 'w', buffering=1, closefd=False)
        os.chdir(cwd)
        os.environ.update(env)
        if argv[0].endswith('.sh'):
            os.execvp('bash', ['bash', *argv])
        if not fork:
            os.execv(sys.executable, [sys.executable, *argv])
        code = _run_in_process(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (e.code is not None)
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _run_in_process(argv: list) -> int:
    if argv[0] == '-m':
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name='__main__', alter_sys=True)
    else:
        sys.argv = list(argv)
        sys.path.insert(0, os.path.dirname(argv[0]))
        runpy.run_path(argv[0], run_name='__main__')
    return 0


def _wait(pid: int, timeout: float) -> tuple:
    """The child's exit code (negative: killed by that signal; None after killing its process
    group at the timeout) and the CPU seconds of it and the children it waited for."""
    end = time.monotonic() + timeout
    code = None
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > end:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            usage = os.wait4(pid, 0)[2]
            break
        time.sleep(0.1)
    return code, round(usage.ru_utime + usage.ru_stime, 1)


def environment() -> dict:
    """Device, Python, torch, CUDA and nvcc versions (the CPU model and AVX-512 on CPU)."""
    import torch
    info = dict(python=platform.python_version(), torch=torch.__version__,
                cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(device=props.name, capability=f'{props.major}.{props.minor}',
                    memory_gib=round(props.total_memory / 2**30, 1))
    else:
        cpuinfo = Path('/proc/cpuinfo').read_text() if Path('/proc/cpuinfo').exists() else ''
        model = re.search(r'model name\s*:\s*(.*)', cpuinfo)
        info.update(device='cpu: ' + (model.group(1) if model else platform.processor()),
                    avx512f='avx512f' in cpuinfo, cpu_count=os.cpu_count())
    try:
        nvcc = subprocess.run(['nvcc', '--version'], capture_output=True, text=True).stdout
        info['nvcc'] = re.findall(r'release (\S+),', nvcc)[-1]
    except (OSError, IndexError):
        info['nvcc'] = None
    return info


def run_check(out: Path, work_dir: Path, dry_run: bool, time_limit: float,
              mmcv_build: dict, port: int, only: list | None = None) -> dict:
    """Run the steps (``only``: those named) and write the JSON ``out`` after each; steps that
    would start after ``time_limit`` seconds are recorded as skipped."""
    start = time.monotonic()
    work_dir.mkdir(parents=True, exist_ok=True)
    logs = out.parent / (out.stem + '_logs')
    logs.mkdir(parents=True, exist_ok=True)
    log = Path(mmcv_build.get('log', ''))
    if mmcv_build['status'] not in ('ok', 'skipped') and log.is_file():
        mmcv_build['error'] = log.read_text(errors='replace')[-TAIL:]
    report = dict(mode='dry-run' if dry_run else 'gpu', mmcv_build=mmcv_build, steps={})
    try:
        report['environment'] = environment()
    except Exception as e:  # torch itself broken: the steps will say more
        report['environment'] = dict(error=repr(e))
    if dry_run:
        preload()
    for step in check_steps(dry_run, port):
        if only and step.name not in only:
            continue
        left = time_limit - (time.monotonic() - start)
        if left < 10:
            report['steps'][step.name] = dict(status='skipped',
                                              error=f'out of time (--time-limit {time_limit:g})')
        else:
            print(f'[gpu_check] {step.name} ...', flush=True)
            report['steps'][step.name] = run_step(step, work_dir, logs / f'{step.name}.log',
                                                  fork=dry_run, timeout=min(step.timeout, left))
            print(f'[gpu_check] {step.name}: {summary(report["steps"][step.name])}', flush=True)
        report['total_seconds'] = round(time.monotonic() - start, 1)
        out.write_text(json.dumps(report, indent=1) + '\n')
    return report


def preload():
    """Import what the steps import (the package, each scope's registered modules, pytest), so
    that the forked steps inherit it; a failure is left for each step to report."""
    import importlib
    try:
        import mmseg_ext.apis  # noqa: F401
        for scope in ('mmseg', 'mmdet', 'mmpretrain'):
            importlib.import_module(f'{scope}.utils').register_all_modules(False)
        import pytest  # noqa: F401
    except Exception:
        pass


def summary(record: dict) -> str:
    """One line: the status and the result, or the error's last line."""
    if record['status'] == 'ok':
        return f"ok ({record['seconds']} s) " + json.dumps(record['result'])[:300]
    lines = record['error'].strip().splitlines()
    return f"{record['status']}: {lines[-1] if lines else ''}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_gpu_check(out: Path, work_dir: Path, dry_run: bool, time_limit: float, mmcv_build: dict,
                  only: list | None = None) -> dict:
    """:func:`run_check` on a free port, then one line of how many steps were ok."""
    report = run_check(out, work_dir, dry_run, time_limit, mmcv_build, free_port(), only)
    failed = [name for name, step in report['steps'].items() if step['status'] != 'ok']
    print(f'[gpu_check] wrote {out}: {len(report["steps"]) - len(failed)} of '
          f'{len(report["steps"])} steps ok' + (f'; not ok: {" ".join(failed)}' if failed else ''))
    return report
