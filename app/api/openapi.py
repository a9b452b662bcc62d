"""OpenAPI fragments shared by routes: the upload body and the error responses."""

from __future__ import annotations

from typing import Any

from convlens.app.api.v1.schemas import ErrorResponse

_binary = {"type": "string", "format": "binary"}

IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "One image (PNG, JPEG, GIF, BMP, WebP or TIFF): multipart field `file`, or the raw bytes.",
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": _binary}, "required": ["file"]}
            },
            "image/png": {"schema": _binary},
            "image/jpeg": {"schema": _binary},
            "application/octet-stream": {"schema": _binary},
        },
    }
}

# `?model=` for a route that reads it itself rather than through `ModelDep`
MODEL_PARAMETER: dict[str, Any] = {
    "parameters": [
        {
            "name": "model",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "the model to run (see /v1/models); default: the service's default model",
        }
    ]
}

BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Several images as repeated multipart field `files`.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"files": {"type": "array", "items": _binary}},
                    "required": ["files"],
                }
            }
        },
    }
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Empty, undecodable or blank image",
        401: "Missing or wrong X-API-Key (only when an API key is configured)",
        404: "Unknown model, or unknown layer",
        413: "Body over the byte limit, or image over the pixel limit",
        415: "Unsupported content type or image format",
        422: "Malformed request",
        503: "Inference queue full (see Retry-After) or model not ready",
    }
    return {s: {"model": ErrorResponse, "description": text[s]} for s in statuses}


UPLOAD_ERRORS = errors(400, 401, 413, 415, 422, 503)

# the response of the routes that answer with a picture
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "a PNG picture"}}
