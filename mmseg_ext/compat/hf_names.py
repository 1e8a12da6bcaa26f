"""mmpretrain 1.2.0 (which mmdet 3.3 imports when it is installed) imports
``apply_chunking_to_forward``, ``find_pruneable_heads_and_indices`` and ``prune_linear_layer`` from
``transformers.modeling_utils``. Current transformers releases define them in
``transformers.pytorch_utils`` only, so mmpretrain's fallback sets ``PreTrainedModel = None`` and
``import mmdet.models`` fails with "NoneType takes no arguments". Re-export the three names."""
import importlib.util

MOVED = ('apply_chunking_to_forward', 'find_pruneable_heads_and_indices', 'prune_linear_layer')


def restore_transformers_names():
    if importlib.util.find_spec('mmpretrain') is None or \
            importlib.util.find_spec('transformers') is None:
        return
    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils
    for name in MOVED:
        if not hasattr(modeling_utils, name) and hasattr(pytorch_utils, name):
            setattr(modeling_utils, name, getattr(pytorch_utils, name))
