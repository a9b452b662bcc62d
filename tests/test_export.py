"""Exported networks: ONNX checked with ONNX Runtime, TorchScript with torch.jit."""

import numpy as np
import pytest
import torch

from convlens.app.config import Settings
from convlens.model.card import load_folder
from convlens.model.export import Portable, export


@pytest.mark.parametrize("name", ["shipped", "article", "mlp"])
def test_onnx_gives_the_torch_digits_and_probabilities(name, mnist_test, tmp_path):
    import onnxruntime as ort

    folder = load_folder(Settings().model_dir(name))
    path = export(folder.network, tmp_path / f"{name}.onnx", "onnx")
    x = (mnist_test.images.astype(np.float32) / 255)[:, None]  # the committed 1,000 test digits
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    onnx_probs = session.run(["probabilities"], {"image": x})[0]
    with torch.no_grad():
        torch_probs = Portable(folder.network)(torch.from_numpy(x)).numpy()
    assert onnx_probs.shape == (1000, 10)
    assert (onnx_probs.argmax(1) == torch_probs.argmax(1)).all()
    assert np.abs(onnx_probs - torch_probs).max() < 1e-4
    assert (onnx_probs.argmax(1) == mnist_test.labels).mean() > 0.95


def test_torchscript_runs_without_the_python_code(mnist_test, tmp_path):
    folder = load_folder(Settings().model_dir("article"))
    path = export(folder.network, tmp_path / "article.pt", "torchscript")
    loaded = torch.jit.load(str(path))
    x = torch.from_numpy((mnist_test.images[:64].astype(np.float32) / 255)[:, None])
    with torch.no_grad():
        assert torch.allclose(loaded(x), Portable(folder.network)(x), atol=1e-6)
