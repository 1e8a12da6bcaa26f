"""The package as users install it: a built wheel holds every file the package reads at run
time (the LS kernel's C++ source included), declares its dependencies, and works installed
outside the repository."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO


def _source_files(under='.'):
    """The files of the source tree (tracked or new, not ignored), as a clean clone has them."""
    listed = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', under], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout.split()
    return {name for name in listed if osp.isfile(osp.join(REPO, name))}


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """A wheel built from a copy of the source tree: no build/ or egg-info left by earlier
    builds can add files the sdist / wheel configuration misses."""
    src, out = tmp_path_factory.mktemp('src'), tmp_path_factory.mktemp('wheel')
    for name in _source_files():
        os.makedirs(osp.dirname(src / name), exist_ok=True)
        shutil.copy2(osp.join(REPO, name), src / name)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation',
                    '--no-cache-dir', '-w', str(out), str(src)], check=True, capture_output=True)
    (path, ) = out.glob('mmseg_ext-*.whl')
    return path


def _package_files():
    """Every file of the package's source folder: the package reads nothing else at run time."""
    return {name for name in _source_files('mmseg_ext') if '__pycache__' not in name}


def test_wheel_holds_every_package_file(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    files = _package_files()
    assert any(name.endswith('.cpp') for name in files)
    assert files - names == set()


def test_wheel_declares_the_imports(wheel):
    """Requires-Dist covers the third-party modules the package imports (by distribution),
    the OpenMMLab lines as extras."""
    with zipfile.ZipFile(wheel) as archive:
        meta = next(archive.read(n).decode() for n in archive.namelist()
                    if n.endswith('.dist-info/METADATA'))
    required = {line.split(':', 1)[1].strip().split(';')[0].split('>')[0].split('<')[0]
                .split('=')[0].split('[')[0].strip().lower()
                for line in meta.splitlines() if line.startswith('Requires-Dist:')}
    for dist in ('torch', 'torchvision', 'numpy', 'opencv-python', 'pillow', 'scipy',
                 'matplotlib', 'ftfy', 'regex', 'scikit-image', 'imagecorruptions', 'setuptools',
                 'pycocotools', 'cityscapesscripts', 'safetensors', 'mmengine', 'mmcv',
                 'mmsegmentation', 'mmdet', 'onedl-mmengine', 'onedl-mmcv'):
        assert dist in required, dist
    assert 'Provides-Extra: upstream' in meta and 'Provides-Extra: onedl' in meta


def test_installed_wheel_imports_and_finds_its_kernel_source(wheel, tmp_path):
    """Installed outside the repository (no editable path), the package imports and the LS
    kernel's source sits where the loader looks for it."""
    target = tmp_path / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-cache-dir',
                    '--target', str(target), str(wheel)], check=True, capture_output=True)
    code = ('import os, mmseg_ext; from mmseg_ext.models.layers import ls_attention_kernel as k; '
            'print(mmseg_ext.__file__); print(os.path.isfile(k.SOURCE))')
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out[0].startswith(str(target)) and out[1] == 'True'
    assert not osp.commonpath([out[0], REPO]) == REPO
