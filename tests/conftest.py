"""Fixtures only; what tests share besides fixtures lives in benchmarks/harness.py."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from benchmarks.harness import mnist_fixture
from convlens.app.config import Settings
from convlens.app.main import create_app
from convlens.model.data import Split


@pytest.fixture(scope="session")
def mnist_test() -> Split:
    """The committed 1,000-image MNIST test subset."""
    return mnist_fixture()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(max_images_per_request=16, max_body_bytes=2 * 1024 * 1024, max_pixels=4_000_000)


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    # `with` runs the lifespan: weights load, warm-up, scheduler start and drain
    with TestClient(create_app(settings)) as c:
        yield c
