"""The tutorial server: decode and one forward pass per request inside an async endpoint.

This is how most FastAPI + PyTorch tutorials serve a model: the event loop blocks for
every forward pass, requests are never batched.

    uvicorn benchmarks.servers.tutorial:app --port 8102
"""

import io

import numpy as np
import torch
from fastapi import FastAPI, File, UploadFile
from PIL import Image

from convlens.app.config import Settings
from convlens.model.checkpoint import load_checkpoint
from convlens.model.evaluate import normalize

torch.set_num_threads(int(__import__("os").environ.get("TORCH_THREADS", "1")))
model = load_checkpoint(Settings().model_dir("shipped") / "model.safetensors")
app = FastAPI()


@app.post("/v1/predict")
async def predict(file: UploadFile = File(...)) -> dict:  # noqa: B008
    img = Image.open(io.BytesIO(await file.read())).convert("L").resize((28, 28))
    x = normalize(torch.from_numpy(np.asarray(img).copy())[None, None])
    with torch.no_grad():
        probs = torch.softmax(model(x), 1)[0]
    digit = int(probs.argmax())
    return {"digit": digit, "confidence": float(probs[digit])}
