"""numpy as seen by one third-party module that still uses names numpy 2.x removed."""
import types

import numpy as np


class NumpyView(types.ModuleType):
    """Forwards every attribute to numpy, plus the given ``aliases`` (e.g. ``in1d=...``).

    Assigned to a single module's ``np`` name, it lets that module run on numpy 2.x while numpy
    itself stays untouched."""

    def __init__(self, **aliases):
        super().__init__('numpy')
        self.__dict__.update(aliases)

    def __getattr__(self, name):
        return getattr(np, name)
