"""The HTTP server around the app: ASGI limits, metrics, uvicorn's protocol, workers."""
