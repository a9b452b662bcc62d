"""LitServe serving the same model with its dynamic batching.

python -m benchmarks.servers.litserve_server 8103
"""

import io
import os
import sys

import litserve as ls
import numpy as np
import torch
from PIL import Image

from convlens.app.config import Settings
from convlens.model.checkpoint import load_checkpoint
from convlens.model.evaluate import normalize


class DigitAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
        self.model = load_checkpoint(Settings().model_dir("shipped") / "model.safetensors")

    def decode_request(self, request):  # type: ignore[no-untyped-def]
        # runs in LitServe's inference worker, on the form it pickled across processes
        upload = request["file"]
        data = upload.file.read() if hasattr(upload, "file") else upload.read()
        img = Image.open(io.BytesIO(data)).convert("L").resize((28, 28))
        return normalize(torch.from_numpy(np.asarray(img).copy())[None])

    def batch(self, inputs):  # type: ignore[no-untyped-def]
        return torch.stack(inputs)

    def predict(self, x):  # type: ignore[no-untyped-def]
        with torch.no_grad():
            return torch.softmax(self.model(x), 1)

    def unbatch(self, output):  # type: ignore[no-untyped-def]
        return list(output)

    def encode_response(self, probs):  # type: ignore[no-untyped-def]
        digit = int(probs.argmax())
        return {"digit": digit, "confidence": float(probs[digit])}


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8103
    api = DigitAPI(max_batch_size=64, batch_timeout=0.01, api_path="/v1/predict")
    workers = int(os.environ.get("WEB_CONCURRENCY", "2"))  # two inference workers, one per core
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=workers)
    server.run(port=port, host="127.0.0.1", generate_client_file=False)
