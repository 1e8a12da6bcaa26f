"""Small, documented fixes that make the OpenMMLab 2.x stack work on current PyTorch / numpy.

See docs/compat.md. Importing :mod:`mmseg_ext` applies them once, each as soon as the module
it fixes is imported (:func:`~.post_import.when_imported`), so that the package itself stays
cheap to import:

* :func:`allow_mmengine_checkpoint_types` allow-lists, for ``torch.load(weights_only=True)``
  (the default since torch 2.6), exactly the non-tensor types an mmengine Runner checkpoint holds.
* :func:`make_checkpoint_saving_atomic` makes ``Runner.save_checkpoint`` write to a temporary file
  and rename it (:func:`save_checkpoint_atomic`, which the weight converters use too), so an
  interrupted save never leaves a truncated checkpoint behind.
* :func:`make_resume_read_config_as_data` makes ``Runner.resume`` read the checkpoint's config text
  as data (mmengine parses it as a ``.py`` config, i.e. executes it).
* :func:`make_mmengine_load_weights_only` removes onedl-mmengine's fallback to
  ``weights_only=False``.
* :func:`make_checkpoint_errors_name_the_file` makes an unreadable (truncated, foreign) checkpoint
  fail with an error that names the file.
* :func:`make_resume_replay_skipped_batches` makes onedl-mmengine's resume load the skipped
  batches, as upstream does, so that the resumed run draws the same augmentations.
* :func:`make_config_dump_keep_interrupts` keeps a Ctrl-C during a config dump a
  KeyboardInterrupt (mmengine turns it into ``SyntaxError: Failed to format the config file``).
* :func:`patch_cityscapes_evaluation` lets the official Cityscapes evaluation run on numpy >= 2.4.
* :func:`prepare_mmpretrain_import` lets mmpretrain 1.2.0 import on the pinned stack (without the
  ``importlib_metadata`` backport, and with its multimodal models, which current transformers
  breaks, switched off). It runs first: mmseg imports mmdet, which imports mmpretrain.
"""
from .checkpoint import (
    allow_mmengine_checkpoint_types,
    load_checkpoint_file,
    make_checkpoint_errors_name_the_file,
    make_checkpoint_saving_atomic,
    make_mmengine_load_weights_only,
    make_resume_read_config_as_data,
    save_checkpoint_atomic,
)
from .cityscapes import patch_cityscapes_evaluation
from .config_dump import make_config_dump_keep_interrupts
from .mmpretrain import prepare_mmpretrain_import
from .post_import import when_imported
from .resume_replay import make_resume_replay_skipped_batches

prepare_mmpretrain_import()
allow_mmengine_checkpoint_types()
make_config_dump_keep_interrupts()
for _fix in (make_checkpoint_saving_atomic, make_checkpoint_errors_name_the_file,
             make_resume_read_config_as_data, make_mmengine_load_weights_only,
             make_resume_replay_skipped_batches):
    when_imported('mmengine.runner', _fix)
when_imported('cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling',
              patch_cityscapes_evaluation)

__all__ = ['allow_mmengine_checkpoint_types', 'load_checkpoint_file',
           'make_checkpoint_errors_name_the_file', 'make_checkpoint_saving_atomic',
           'make_config_dump_keep_interrupts',
           'make_mmengine_load_weights_only', 'make_resume_read_config_as_data',
           'make_resume_replay_skipped_batches',
           'patch_cityscapes_evaluation', 'prepare_mmpretrain_import', 'save_checkpoint_atomic',
           'when_imported']
