import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from convlens.app.config import Settings
from convlens.app.main import create_app
from convlens.model.data import Split, load_split
from convlens.model.uploads import encode

__all__ = ["FIXTURES", "encode", "png_bytes"]

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def mnist_test() -> Split:
    """The committed 1,000-image MNIST test subset."""
    return load_split(FIXTURES / "mnist", "test", verify=False, download_missing=False)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(max_images_per_request=16, max_body_bytes=2 * 1024 * 1024, max_pixels=4_000_000)


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    # `with` runs the lifespan: weights load, warm-up, scheduler start and drain
    with TestClient(create_app(settings)) as c:
        yield c


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG")
    return buf.getvalue()
