#!/usr/bin/env bash
# Create .venv and install convlens (editable) with its dev tools. Idempotent and quick:
# nothing is reinstalled while pyproject.toml and this script are unchanged (the install
# is editable, so code changes need none).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.convlens-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && .venv/bin/python -c "import convlens.app.main" 2>/dev/null; then
    exit 0
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first and exactly: a looser spec would pull a multi-GB CUDA build
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e '.[dev]'
echo "$want" > "$stamp"
