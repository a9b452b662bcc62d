"""HTTP floor: reads the multipart upload and returns a constant. No model, no decoding.

uvicorn benchmarks.servers.floor:app --port 8101
"""

from fastapi import FastAPI, File, UploadFile

app = FastAPI()
ANSWER = {"digit": 0, "confidence": 1.0}


@app.post("/v1/predict")
async def predict(file: UploadFile = File(...)) -> dict:  # noqa: B008
    await file.read()
    return ANSWER
