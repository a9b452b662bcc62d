"""Schemathesis against the service's own OpenAPI schema, on a real server.

Every check schemathesis has (no server error, documented status codes and content
types, bodies that validate against the response models) but one: positive_data_acceptance
expects any schema-valid body to be accepted, and no schema can say "an image with a
visible digit in it"; random bytes rightly get a documented 400.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import running_server

pytestmark = pytest.mark.slow


def test_api_conforms_to_its_schema():
    st = Path(sys.executable).parent / "schemathesis"
    with running_server({"WEB_CONCURRENCY": "1"}) as server:
        out = subprocess.run(
            [
                str(st),
                "run",
                server.url + "/openapi.json",
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
                "--max-examples",
                "30",
                "--generation-deterministic",
                "--request-timeout",
                "20",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
