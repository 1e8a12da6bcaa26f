"""Make mmpretrain 1.2.0 importable on the pinned stack (measured with transformers 4.57.1).

* mmpretrain imports the ``importlib_metadata`` backport at import time, for ``distribution``
  and ``PackageNotFoundError``, which the standard library's ``importlib.metadata`` has had since
  Python 3.8. Where the backport is not installed, the standard module serves under its name.
* mmpretrain enables its multimodal models (BLIP, BLIP-2, LLaVA, OFA, ...) whenever
  ``transformers>=4.28`` is installed, and their modules import names that current transformers
  no longer has (``transformers.modeling_utils.apply_chunking_to_forward``, ``GenerationMixin``,
  ...): ``import mmpretrain.models`` raises, and so does ``import mmdet.models``, which imports
  mmpretrain when it is installed. mmseg_ext uses none of them, so its ``WITH_MULTIMODAL`` flag is
  set to False as ``mmpretrain.utils.dependency`` loads: the multimodal names stay registered as
  placeholders that explain what is missing (mmpretrain's own fallback), and importing mmpretrain
  does not load transformers.

Both act only if mmpretrain is not imported yet, i.e. when :mod:`mmseg_ext` is imported first (as
the tools and ``custom_imports`` do).
"""
import importlib.metadata
import importlib.util
import sys

from .post_import import when_imported

DEPENDENCY_MODULE = 'mmpretrain.utils.dependency'


def _multimodal_off():
    sys.modules[DEPENDENCY_MODULE].WITH_MULTIMODAL = False


def prepare_mmpretrain_import():
    if 'mmpretrain' in sys.modules:
        return
    if importlib.util.find_spec('importlib_metadata') is None:
        sys.modules['importlib_metadata'] = importlib.metadata
    when_imported(DEPENDENCY_MODULE, _multimodal_off)


def require_mmpretrain(config):
    """Raise a clear error when an mmpretrain config meets an install without mmpretrain."""
    try:
        import mmpretrain  # noqa: F401
    except Exception as error:  # ImportError, or RuntimeError from a mismatched torchvision
        raise RuntimeError(
            f'{config} is an mmpretrain (classification) config, but mmpretrain cannot be '
            f'imported here ({type(error).__name__}: {error}). mmpretrain needs torchvision, '
            'which a torch-only install leaves out (as the former CPU-only TORCH_SPEC did): '
            're-run tools/setup_env.sh, which installs the matching torch and torchvision '
            '(docs/install.md).') from None
