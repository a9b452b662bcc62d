#!/usr/bin/env bash
# Set up (if needed) and serve the shipped weights on http://127.0.0.1:${PORT:-8000}
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/uvicorn app.main:app --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" "$@"
