"""On PYTHONPATH, makes the modules named in ``BLOCKED_IMPORTS`` (comma-separated) unimportable,
as on a machine where they are not installed: ``import name`` raises ModuleNotFoundError."""
import os
import sys

for _name in filter(None, os.environ.get('BLOCKED_IMPORTS', '').split(',')):
    sys.modules[_name] = None
