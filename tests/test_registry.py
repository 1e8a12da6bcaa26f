"""Registration on demand (docs/registry.md): ``import mmseg_ext`` registers nothing and loads
no model stack; a SegFormer config's ``custom_imports`` bring in SegFormer alone, so that a
SegFormer run needs none of what Panoptic SegFormer, the LS language models or the classifiers
need; ``register_all_modules`` brings in every family."""
import os
import os.path as osp
import subprocess
import sys

from tests.conftest import BLOCKER, REPO, run_tool
from tests.test_tools import write_config

# What SegFormer does not need, though mmseg, mmdet, mmpretrain or the other families import it.
# (matplotlib is not among them: mmengine's Visualizer, which every Runner builds, imports it.)
NOT_FOR_SEGFORMER = ('transformers', 'mmpretrain', 'mmdet', 'torchvision', 'imagecorruptions',
                     'skimage')


def imported_modules(*argv):
    """(stdout, the modules a fresh interpreter imported) of ``python -X importtime ARGV``."""
    proc = subprocess.run([sys.executable, '-X', 'importtime', *argv], cwd=REPO,
                          capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=REPO))
    return proc.stdout, {line.split('|')[-1].strip() for line in proc.stderr.splitlines()
                         if line.startswith('import time:')}


def test_import_mmseg_ext_loads_no_model_stack():
    _, modules = imported_modules('-c', 'import mmseg_ext')
    heavy = {'mmengine.runner', 'mmseg.models', 'mmcv.ops', 'matplotlib', *NOT_FOR_SEGFORMER}
    assert not heavy & modules
    assert not {m for m in modules if m.startswith('mmseg_ext.models')}


def test_tool_help_imports_no_torch():
    for tool in ('tools/train.py', 'tools/test.py', 'tools/infer.py'):
        stdout, modules = imported_modules(tool, '--help')
        assert 'usage:' in stdout
        assert not {'torch', 'mmseg', 'mmengine.runner'} & modules, tool


def test_segformer_train_test_infer_without_the_other_families_stacks(tmp_path, toy_ade20k):
    """The toy SegFormer trains, tests and infers where none of NOT_FOR_SEGFORMER can be
    imported, as on a machine with mmseg alone."""
    env = {'PYTHONPATH': BLOCKER + os.pathsep + REPO,
           'BLOCKED_IMPORTS': ','.join(NOT_FOR_SEGFORMER)}
    cfg = write_config(tmp_path, toy_ade20k, max_iters=2)
    work = str(tmp_path / 'w')
    run_tool('tools/train.py', cfg, '--work-dir', work, env=env)
    ckpt = osp.join(work, 'iter_2.pth')
    assert 'mIoU' in run_tool('tools/test.py', cfg, ckpt, '--work-dir', work, env=env).stdout
    images = osp.join(toy_ade20k, 'images', 'validation')
    run_tool('tools/infer.py', cfg, ckpt, images, '--out-dir', str(tmp_path / 'out'), env=env)
    assert len(os.listdir(tmp_path / 'out' / 'label_maps')) == len(os.listdir(images))


def test_register_all_modules_registers_every_family():
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmengine.registry import DATASETS, METRICS, MODELS
    from mmseg.registry import MODELS as MMSEG_MODELS

    from mmseg_ext.registry import register_all_modules
    register_all_modules()
    for name in ('MiT', 'LSAttention2d', 'CvTLS', 'ViLLS', 'LSCharLM', 'LRAClassifier'):
        assert name in MODELS.module_dict, name
    assert 'AllMLPHead' in MMSEG_MODELS.module_dict
    assert 'PanopticSegFormer' in MMDET_MODELS.module_dict
    assert 'CharLMDataset' in DATASETS.module_dict and 'BitsPerChar' in METRICS.module_dict
