#!/usr/bin/env bash
# Set up (if needed) and serve the shipped weights on http://127.0.0.1:${PORT:-8000}
# (the same entrypoint as the Docker image: python -m convlens.app.serve; WEB_CONCURRENCY workers)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
HOST=${HOST:-127.0.0.1} PORT=${PORT:-8000} exec .venv/bin/python -m convlens.app.serve
