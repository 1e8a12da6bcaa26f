import os
import os.path as osp
import subprocess
import sys

import pytest

import mmseg_ext  # noqa: F401  (its compat fixes must precede any import of mmseg / mmdet / mmpretrain)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def toy_ade20k(tmp_path_factory):
    """A small ADE20K-format data set: 8 train / 4 val images of 64x64."""
    from mmseg_ext.utils.toy_data import make_ade20k
    out = tmp_path_factory.mktemp('toy_ade20k')
    make_ade20k(str(out), num_train=8, num_val=4, size=(64, 64), seed=0)
    return osp.join(str(out), 'ADEChallengeData2016')


def run_tool(*args, env=None, check=True, timeout=900):
    """Run a repo script with this interpreter; returns the CompletedProcess."""
    full_env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''),
                    PYTHON=sys.executable, OMP_NUM_THREADS='1')
    full_env.update(env or {})
    cmd = [sys.executable, *args] if args[0].endswith('.py') else ['bash', *args]
    proc = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{cmd} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n'
                             f'{proc.stderr[-4000:]}')
    return proc
