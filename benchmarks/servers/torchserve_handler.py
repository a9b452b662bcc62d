"""TorchServe handler around the project's network, batched as TorchServe's docs recommend:
the frontend gathers up to batch_size requests (or max_batch_delay ms) and hands the
handler the whole batch; one forward pass answers them all."""

import io
import os

import numpy as np
import torch
from PIL import Image
from ts.torch_handler.base_handler import BaseHandler

from convlens.model.checkpoint import load_checkpoint
from convlens.model.evaluate import normalize


class DigitHandler(BaseHandler):
    def initialize(self, context) -> None:  # type: ignore[no-untyped-def]
        torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
        self.model = load_checkpoint(os.environ["CONVLENS_WEIGHTS_FILE"])
        self.initialized = True

    def preprocess(self, data):  # type: ignore[no-untyped-def]
        images = []
        for row in data:
            raw = row.get("file") or row.get("data") or row.get("body")
            img = Image.open(io.BytesIO(raw)).convert("L").resize((28, 28))
            images.append(torch.from_numpy(np.asarray(img).copy())[None])
        return normalize(torch.stack(images))

    def inference(self, x, *args, **kwargs):  # type: ignore[no-untyped-def]
        with torch.no_grad():
            return torch.softmax(self.model(x), 1)

    def postprocess(self, probs):  # type: ignore[no-untyped-def]
        digits = probs.argmax(1)
        return [{"digit": int(d), "confidence": float(p[d])} for d, p in zip(digits, probs, strict=True)]
