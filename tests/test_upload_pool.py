"""Training sees uploads exactly as the service does: through the one serving function."""

import numpy as np

from convlens.app.imaging import preprocess as serving
from convlens.model import upload_pool


def test_training_uploads_go_through_the_serving_preprocess(mnist_test, monkeypatch):
    calls: list[bytes] = []
    real = serving.preprocess

    def spy(data: bytes, max_pixels: int):
        calls.append(data)
        return real(data, max_pixels)

    monkeypatch.setattr(serving, "preprocess", spy)
    x, y, refused = upload_pool.build_pool(mnist_test.images[:24], mnist_test.labels[:24], seed=5)
    assert len(calls) == 24  # every rendered upload, none preprocessed another way
    assert len(x) == len(y) == 24 - sum(refused.values())
    # and what training stores is what the service would feed the network
    expected = np.round(real(calls[0], upload_pool.MAX_PIXELS).pixels * 255).astype(np.uint8)
    np.testing.assert_array_equal(x[0], expected)
    np.testing.assert_array_equal(y, mnist_test.labels[:24][: len(y)])


def test_the_pool_is_the_same_for_any_number_of_workers(mnist_test):
    images, labels = mnist_test.images[:600], mnist_test.labels[:600]
    one = upload_pool.build_pool(images, labels, seed=1, workers=1)
    two = upload_pool.build_pool(images, labels, seed=1, workers=2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
