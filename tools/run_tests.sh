#!/usr/bin/env bash
# The whole test suite, in the project's virtual environment (created on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
exec .venv/bin/python -m pytest tests "$@"
