#!/usr/bin/env bash
# The whole test suite, in the project's virtual environment (created on first use).
# TEST_WORKERS pytest-xdist processes (default: the number of cores, at most 4), one thread
# each; a test module stays on one worker (its module-scoped fixtures are built once).
# TEST_WORKERS=0 runs everything in this process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
WORKERS=${TEST_WORKERS:-$(( $(nproc) < 4 ? $(nproc) : 4 ))}
if [ "$WORKERS" = 0 ]; then
    exec .venv/bin/python -m pytest tests "$@"
fi
exec .venv/bin/python -m pytest -n "$WORKERS" --dist loadfile tests "$@"
