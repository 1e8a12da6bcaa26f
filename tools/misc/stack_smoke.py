"""The smoke set of tools/misc/stack_matrix.sh, run inside one stack's environment: import,
build every shipped config's model, then the end-to-end tests that train the toy SegFormer,
Panoptic SegFormer, LS char-LM and classifier configs, run test.py, export ONNX through the
parity gate and replay the crafted-checkpoint payloads. Prints one JSON object."""
import argparse
import glob
import json
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
END_TO_END = [
    'tests/test_tools.py::test_test_tool_saves_metrics_overlays_and_label_maps',
    'tests/test_tools.py::test_resume_after_crash_matches_uninterrupted_run',
    'tests/test_panoptic_tools.py::test_dist_train_then_test_with_panoptic_overlays',
    'tests/test_ls_attention_lm.py::test_runner_training_lowers_bpc',
    'tests/test_imagenet.py::test_toy_cvt_ls_beats_chance_through_train_and_test_tools',
    'tests/test_deploy.py::test_b0_dynamic_export_passes_gate_and_runs_any_size',
    'tests/test_checkpoint_security.py',
    'tests/test_compat.py',
]


def build_every_config():
    """Build the model of every config under configs/ in its own scope; name the failures."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    registries = {}
    for scope in ('mmengine', 'mmseg', 'mmdet', 'mmpretrain'):
        registries[scope] = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    failed, built = {}, 0
    for path in sorted(glob.glob(osp.join(REPO, 'configs', '*', '*.py'))):
        if '/_base_/' in path:
            continue
        name = osp.relpath(path, REPO)
        try:
            cfg = Config.fromfile(path)
            scope = cfg.get('default_scope', 'mmseg')
            with DefaultScope.overwrite_default_scope(scope):
                registries[scope].build(cfg.model)
            built += 1
        except Exception as error:  # recorded, the matrix goes on
            failed[name] = f'{type(error).__name__}: {str(error)[:300]}'
    return built, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--skip-configs', action='store_true', help='skip building every config')
    args = parser.parse_args()
    result, start = {}, time.time()
    import torch

    from mmseg_ext.registry import register_all_modules
    register_all_modules()
    result['versions'] = {name: __import__(name).__version__ for name in (
        'torch', 'torchvision', 'numpy', 'mmengine', 'mmcv', 'mmseg', 'mmdet', 'mmpretrain')}
    result['import_s'] = round(time.time() - start, 1)
    from mmcv.ops import nms
    nms(torch.rand(4, 4).sort(1).values, torch.rand(4), 0.5)  # the compiled ops run
    if not args.skip_configs:
        built, failed = build_every_config()
        result['configs'] = {'built': built, 'failed': failed}
    proc = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                           *END_TO_END], cwd=REPO, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    result['end_to_end'] = {'exit': proc.returncode, 'summary': lines[-1] if lines else '',
                            'failures': [ln for ln in lines if ln.startswith(('FAILED', 'ERROR'))]}
    result['ok'] = proc.returncode == 0 and not result.get('configs', {}).get('failed')
    print(json.dumps(result))


if __name__ == '__main__':
    main()
