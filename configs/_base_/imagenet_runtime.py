# Runtime of the ImageNet classification configs: mmpretrain's default runtime (default_scope
# 'mmpretrain', so mmpretrain's datasets, transforms, metrics and hooks resolve as usual), plus
# the plugin and the RNG-state hook that makes --resume exact (docs/compat.md).
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmseg_ext.registry.classification'], allow_failed_imports=False)
custom_hooks = [dict(type='RNGStateHook')]
