#!/usr/bin/env bash
# Set up (if needed), lint, type-check, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy -p convlens  # app/, model/ and the package: convlens/app and convlens/model link to them
exec .venv/bin/python -m pytest "$@"
