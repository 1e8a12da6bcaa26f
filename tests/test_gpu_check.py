"""The prepared GPU check (tools/misc/gpu_check.sh, mmseg_ext/gpu_check.py) rehearsed on
CPU: the dry run's JSON has every step, each ok, with what the GPU run reports; a failing,
hanging or silent step is recorded as such and the check goes on."""
import json
import math

import pytest
import torch

from .conftest import run_tool

STEPS = ['toy_ade20k', 'toy_coco_panoptic', 'toy_imagenet', 'toy_text', 'toy_text_split',
         'fps_mit-b0', 'fps_mit-b1', 'fps_mit-b2', 'fps_mit-b3', 'fps_mit-b4', 'fps_mit-b5',
         'train_segformer', 'train_panoptic', 'train_ls_char_lm', 'train_classifier',
         'ls_attention', 'ls_attention_speed', 'dist_train']


def test_dry_run_runs_every_step_ok(tmp_path):
    run_tool('tools/misc/gpu_check.sh', '--dry-run', '--work-dir', str(tmp_path / 'scratch'),
             env=dict(OUT=str(tmp_path)), timeout=1800)
    report = json.loads((tmp_path / 'gpu_check.json').read_text())
    assert report['mode'] == 'dry-run' and report['mmcv_build'] == {'status': 'skipped'}
    assert report['environment']['torch'] == torch.__version__
    assert report['environment']['device'].startswith('cpu')
    steps = report['steps']
    assert list(steps) == STEPS
    failed = {name: s.get('error', '')[-800:] for name, s in steps.items() if s['status'] != 'ok'}
    assert not failed, failed
    for b in range(6):
        assert steps[f'fps_mit-b{b}']['result']['fps'] > 0
    for name in ('train_segformer', 'train_panoptic', 'train_ls_char_lm', 'train_classifier',
                 'dist_train'):
        result = steps[name]['result']
        assert result['iterations_logged'] >= 2 and math.isfinite(result['last_loss']), name
    assert 'mIoU' in steps['train_segformer']['result']['val']
    assert 'coco_panoptic/PQ' in steps['train_panoptic']['result']['val']
    assert 'bpc' in steps['train_ls_char_lm']['result']['val']
    assert 'accuracy/top1' in steps['train_classifier']['result']['val']
    assert steps['ls_attention']['result'] == {'passed': 3}
    assert set(steps['ls_attention_speed']['result']['1d']) == {'1024', '4096', '16384'}
    dist_log = (tmp_path / 'gpu_check_logs' / 'dist_train.log').read_text()
    assert 'CPU distributed run: gloo, rank 0 of 1' in dist_log


@pytest.mark.parametrize('fork', [True, False])
def test_failures_are_recorded_and_the_check_goes_on(tmp_path, fork):
    from mmseg_ext import gpu_check as check
    scripts = dict(ok='print("Average fps of 2 runs: 12.50")',
                   raises='raise ValueError("boom")',
                   silent='print("nothing to see")',
                   hangs='import time\ntime.sleep(60)')
    records = {}
    for name, code in scripts.items():
        script = tmp_path / f'{name}.py'
        script.write_text(code + '\n')
        step = check.Step(name, [script], timeout=60, parse=check.parse_fps)
        records[name] = check.run_step(step, tmp_path, tmp_path / f'{name}.log', fork,
                                       timeout=2 if name == 'hangs' else 60)
    assert records['ok']['status'] == 'ok'
    assert records['ok']['result'] == {'fps': 12.5, 'runs': 2}
    assert records['raises']['status'] == 'error'
    assert 'ValueError: boom' in records['raises']['error']
    assert records['silent']['status'] == 'error'
    assert "no 'Average fps of N runs: X' line" in records['silent']['error']
    assert records['hangs']['status'] == 'timeout' and records['hangs']['seconds'] < 30


def test_steps_out_of_time_are_skipped_and_recorded(tmp_path):
    from mmseg_ext import gpu_check as check
    out = tmp_path / 'check.json'
    check.run_check(out, tmp_path, dry_run=True, time_limit=0, mmcv_build={'status': 'skipped'},
                    port=0)
    steps = json.loads(out.read_text())['steps']
    assert list(steps) == STEPS
    assert all(s['status'] == 'skipped' for s in steps.values())
