import os
import os.path as osp
import resource
import subprocess
import sys
import time

import pytest

# first: mmseg_ext's compat fixes must precede any import of mmseg / mmdet / mmpretrain
from mmseg_ext.registry import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
register_all_modules()  # tests build every family's modules in this process

if os.environ.get('PYTEST_XDIST_WORKER'):
    # tools/run_tests.sh runs one xdist worker per core: one thread each, no oversubscription
    # (tests that need several threads set them themselves)
    import torch
    torch.set_num_threads(1)


@pytest.fixture(scope='session')
def toy_ade20k(tmp_path_factory):
    """A small ADE20K-format data set: 8 train / 4 val images of 64x64."""
    from mmseg_ext.toy_data.images import make_ade20k
    out = tmp_path_factory.mktemp('toy_ade20k')
    make_ade20k(str(out), num_train=8, num_val=4, size=(64, 64), seed=0)
    return osp.join(str(out), 'ADEChallengeData2016')


@pytest.fixture(scope='session')
def toy_cityscapes(tmp_path_factory):
    """A small Cityscapes-format data set: 2 train / 2 val images of 64x128 (read only)."""
    from mmseg_ext.toy_data.images import make_cityscapes
    out = tmp_path_factory.mktemp('toy_cityscapes')
    make_cityscapes(str(out), num_train=2, num_val=2, size=(64, 128), seed=0)
    return out


# Tool runs see no transformers (mmseg_ext's optional `hf` extra), as on an install without it:
# mmdet would load its BERT modules for GroundingDINO and mmengine its optimizers, about 1 s of
# CPU per run that no config here uses. A test that needs it passes env={'BLOCKED_IMPORTS': ''}.
BLOCKER = osp.join(REPO, 'tests', 'helpers', 'blocked_imports')


def run_tool(*args, env=None, check=True, timeout=900):
    """Run a repo script with this interpreter; returns the CompletedProcess."""
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                        [BLOCKER, REPO, os.environ.get('PYTHONPATH', '')]),
                    BLOCKED_IMPORTS='transformers', PYTHON=sys.executable, OMP_NUM_THREADS='1')
    full_env.update(env or {})
    cmd = [sys.executable, *args] if args[0].endswith('.py') else ['bash', *args]
    proc = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{cmd} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n'
                             f'{proc.stderr[-4000:]}')
    return proc


_PHASE_CPU = pytest.StashKey[dict]()
_CPU_LOG = {}


# tools/run_tests.sh hands whole files to the pytest-xdist workers in collection order. The
# files that take the most CPU (measured with --cpu-log) go first, so that no worker is left
# alone with one of them at the end.
HEAVIEST_FILES = ('test_tools.py', 'test_panoptic_tools.py', 'test_analysis_tools.py',
                  'test_learning.py', 'test_panoptic_data.py', 'test_checkpoint_security.py',
                  'test_deploy.py', 'test_imagenet.py')


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVIEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable otherwise


def pytest_addoption(parser):
    parser.addoption('--cpu-durations', type=int, default=None, metavar='N',
                     help='print the N tests that used the most CPU time (the test process and '
                          'its finished children; setup, call and teardown) and the total')
    parser.addoption('--cpu-log', metavar='FILE',
                     help='append "<seconds> <phase> <test id>" to FILE as each phase finishes')


def _cpu_seconds():
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _timed_phase(item, when):
    start = _cpu_seconds()
    yield
    item.stash.setdefault(_PHASE_CPU, {})[when] = _cpu_seconds() - start


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _timed_phase(item, 'setup')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _timed_phase(item, 'call')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield from _timed_phase(item, 'teardown')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach each phase's CPU seconds to its report (reports travel to the xdist controller)."""
    report = (yield).get_result()
    spent = item.stash.get(_PHASE_CPU, {}).get(call.when)
    if spent is not None:
        report.user_properties.append(('cpu_s', spent))


def pytest_configure(config):
    _CPU_LOG['path'] = config.getoption('--cpu-log')


def pytest_runtest_logreport(report):
    """Write --cpu-log lines in the controlling process (an xdist worker forwards its reports)."""
    if not _CPU_LOG['path'] or os.environ.get('PYTEST_XDIST_WORKER'):
        return
    with open(_CPU_LOG['path'], 'a') as log:
        for key, value in report.user_properties:
            if key == 'cpu_s':
                log.write(f'{value:.2f} {report.when} {report.nodeid}\n')


def pytest_terminal_summary(terminalreporter, config):
    count = config.getoption('--cpu-durations')
    if count is None:
        return
    per_test = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for key, value in getattr(report, 'user_properties', ()):
                if key == 'cpu_s':
                    per_test[report.nodeid] = per_test.get(report.nodeid, 0.0) + value
    ranked = sorted(per_test.items(), key=lambda kv: -kv[1])
    terminalreporter.write_sep('=', f'CPU time: {len(per_test)} tests, '
                                    f'{sum(per_test.values()):.1f} s in all')
    for nodeid, seconds in ranked[:count]:
        terminalreporter.write_line(f'{seconds:8.1f} s  {nodeid}')
