"""Post-import hooks: run a fix as soon as the module it patches has loaded.

The fixes in :mod:`mmseg_ext.compat` patch mmengine's Runner, mmpretrain's dependency flags and
cityscapesscripts' evaluation. Importing those modules only to patch them would make every
``import mmseg_ext`` pay for them (``mmengine.runner`` alone costs about 3 s of CPU); instead a
fix runs right after its module executes, or at once when the module is already imported.
"""
import importlib.abc
import importlib.util
import sys


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds one module, lets the real finders locate it, then runs ``callbacks`` once it has
    executed (the module is complete: a package has imported its sub-modules)."""

    def __init__(self, name):
        self.name, self.callbacks = name, []

    def find_spec(self, name, path, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)  # once; the real finders locate the file
        _PENDING.pop(name, None)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            run, callbacks = spec.loader.exec_module, self.callbacks

            def exec_module(module):
                run(module)
                for callback in callbacks:
                    callback()

            spec.loader.exec_module = exec_module
        return spec


_PENDING = {}


def when_imported(name, callback):
    """Call ``callback()`` now if module ``name`` is imported, else right after it is."""
    if name in sys.modules:
        callback()
        return
    if name not in _PENDING:
        _PENDING[name] = _AfterImport(name)
        sys.meta_path.insert(0, _PENDING[name])
    _PENDING[name].callbacks.append(callback)
