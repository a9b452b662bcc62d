"""Schemathesis against the service's own OpenAPI schema: no 5xx, no response that breaks it."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.server import running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    with running_server({"WEB_CONCURRENCY": "1"}) as s:
        yield s


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    case.call_and_validate()
