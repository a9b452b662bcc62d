"""The Open Inference Protocol over REST: health, metadata and inference for every model.

Inputs: `image`, FP32 [N, 1, 28, 28], ink in [0, 1] as an MNIST pixel / 255, used as
given; or `image_bytes`, BYTES [N], whole image files preprocessed like /v1/predict.
Outputs: `probabilities` FP32 [N, 10] and `digit` INT64 [N]. Errors are
{"error": "..."}: 400 for a bad request, 404 for an unknown model or version.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from convlens.app.api.deps import ServiceDep
from convlens.app.api.errors import status_of
from convlens.app.api.v2.schemas import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ProtocolError,
    ServerMetadata,
)
from convlens.app.api.v2.tensors import HEADER_LENGTH, Tensor, encode_response, parse_request
from convlens.app.core.errors import DomainError, MalformedRequest, PayloadTooLarge, UnknownModel
from convlens.app.core.pipeline import Service, score_ink_maps, score_uploads
from convlens.app.core.served_model import ServedModel

router = APIRouter(prefix="/v2", tags=["open inference protocol (v2)"])

SERVER_VERSION = "1.0.0"
INPUTS = [
    {"name": "image", "datatype": "FP32", "shape": [-1, 1, 28, 28]},
    {"name": "image_bytes", "datatype": "BYTES", "shape": [-1]},
]
OUTPUTS = [
    {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
    {"name": "digit", "datatype": "INT64", "shape": [-1]},
    # digit, not_a_digit or several_digits (app/core/verdict.py); a blank image is an error
    {"name": "verdict", "datatype": "BYTES", "shape": [-1]},
]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ProtocolError, "description": "bad request"},
    404: {"model": ProtocolError, "description": "unknown model or version"},
}


def protocol_error(error: DomainError) -> JSONResponse:
    status = 404 if isinstance(error, UnknownModel) else 503 if status_of(error) == 503 else 400
    return JSONResponse({"error": error.message}, status_code=status)


async def answer(work: Callable[[], Awaitable[Response]]) -> Response:
    """Run a route's work, turning domain errors into the protocol's error body."""
    try:
        return await work()
    except DomainError as e:
        return protocol_error(e)


def resolve(service: Service, name: str, version: str | None) -> ServedModel:
    model = service.models.get(name)
    if version is not None and version != model.version:
        raise UnknownModel(f"model {name!r} has no version {version!r}; it serves {model.version!r}")
    return model


@router.get("", response_model=ServerMetadata)
async def server_metadata() -> ServerMetadata:
    """Server metadata: name, version and the protocol extensions served."""
    return ServerMetadata(name="convlens", version=SERVER_VERSION, extensions=["binary_tensor_data"])


@router.get("/health/live", response_class=Response, responses={200: {"description": "live"}})
async def live() -> Response:
    """200 while the process answers."""
    return Response(status_code=200)


@router.get(
    "/health/ready",
    response_class=Response,
    responses={200: {"description": "ready"}, 400: {"description": "not ready"}},
)
async def ready(request: Request) -> Response:
    """200 once every model is loaded and warmed up, else 400 (the protocol's false)."""
    service = getattr(request.state, "service", None)
    return Response(status_code=200 if service is not None and service.models.ready else 400)


def _metadata(model: ServedModel) -> ModelMetadata:
    outputs = OUTPUTS if model.judge is not None else [o for o in OUTPUTS if o["name"] != "verdict"]
    return ModelMetadata(name=model.name, versions=[model.version], platform="pytorch", inputs=INPUTS, outputs=outputs)


@router.get("/models/{name}", response_model=ModelMetadata, responses=ERRORS)
async def model_metadata(name: str, service: ServiceDep) -> Response:
    """A model's name, versions, platform, inputs and outputs."""
    return await answer(lambda: _json(_metadata(resolve(service, name, None))))


@router.get("/models/{name}/versions/{version}", response_model=ModelMetadata, responses=ERRORS)
async def model_version_metadata(name: str, version: str, service: ServiceDep) -> Response:
    """The same, for one version (each model serves exactly one)."""
    return await answer(lambda: _json(_metadata(resolve(service, name, version))))


async def _json(model: ModelMetadata) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


@router.get("/models/{name}/ready", response_class=Response, responses={200: {"description": "ready"}, **ERRORS})
async def model_ready(name: str, service: ServiceDep) -> Response:
    """200 when the model is loaded and warmed up."""
    return await answer(lambda: _ready(resolve(service, name, None)))


@router.get(
    "/models/{name}/versions/{version}/ready",
    response_class=Response,
    responses={200: {"description": "ready"}, **ERRORS},
)
async def model_version_ready(name: str, version: str, service: ServiceDep) -> Response:
    """The same, for one version."""
    return await answer(lambda: _ready(resolve(service, name, version)))


async def _ready(model: ServedModel) -> Response:
    return Response(status_code=200 if model.ready else 400)


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its local $defs written in place: an OpenAPI document
    has no `$defs` of its own, and ReDoc refuses references into one."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


INFER_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "JSON, or (binary tensor data extension) a JSON header of "
        "Inference-Header-Content-Length bytes followed by the binary tensors.",
        "content": {
            "application/json": {"schema": _inlined(InferenceRequest.model_json_schema())},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/models/{name}/infer",
    response_model=InferenceResponse,
    responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
    openapi_extra=INFER_DOC,
)
async def infer(name: str, request: Request, service: ServiceDep) -> Response:
    """Predict digits: `image` or `image_bytes` in, `probabilities` and `digit` out."""
    return await answer(lambda: _infer(request, service, resolve(service, name, None)))


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=InferenceResponse,
    responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
    openapi_extra=INFER_DOC,
)
async def infer_version(name: str, version: str, request: Request, service: ServiceDep) -> Response:
    """The same, for one version."""
    return await answer(lambda: _infer(request, service, resolve(service, name, version)))


async def _body(request: Request, limit: int) -> bytes:
    body = await request.body()
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding in ("identity", ""):
        return body
    if encoding not in ("gzip", "deflate"):
        raise MalformedRequest(f"content encoding {encoding!r} is not supported (gzip, deflate)")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | (16 if encoding == "gzip" else 0))
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as e:
        raise MalformedRequest(f"the {encoding} body does not decompress: {e}") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"the decompressed body exceeds the limit of {limit:,} bytes")
    return out


async def _infer(request: Request, service: Service, model: ServedModel) -> Response:
    settings = service.settings
    body = await _body(request, settings.max_body_bytes)
    req = parse_request(body, request.headers.get(HEADER_LENGTH))
    if len(req.inputs) != 1:
        raise MalformedRequest("send exactly one input: 'image' or 'image_bytes'")
    tensor = req.inputs[0]
    n = tensor.shape[0] if tensor.shape else 0
    # ink maps cost only their forward pass; image files are decoded and preprocessed each
    limit = (
        min(settings.max_infer_images, settings.max_queue)
        if tensor.name == "image"
        else settings.max_images_per_request
    )
    if not 1 <= n <= limit:
        raise MalformedRequest(f"a request holds 1 to {limit} images in {tensor.name!r}, got {n}")
    probs, verdicts = await _probabilities(tensor, service, model)
    names = [str(o["name"]) for o in OUTPUTS if verdicts is not None or o["name"] != "verdict"]
    wanted = req.outputs if req.outputs is not None else {name: req.binary_default for name in names}
    unknown = set(wanted) - set(names)
    if unknown:
        raise MalformedRequest(f"unknown output(s) {sorted(unknown)}; this model has {', '.join(names)}")
    available = {
        "probabilities": Tensor("probabilities", "FP32", [n, 10], probs.astype(np.float32)),
        "digit": Tensor("digit", "INT64", [n], probs.argmax(1).astype(np.int64)),
    }
    if verdicts is not None:
        available["verdict"] = Tensor("verdict", "BYTES", [n], [v.encode() for v in verdicts])
    header: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
    if req.id is not None:
        header["id"] = req.id
    content, json_length = encode_response(header, [(available[k], binary) for k, binary in wanted.items()])
    if json_length is None:
        return Response(content, media_type="application/json")
    return Response(content, media_type="application/octet-stream", headers={HEADER_LENGTH: str(json_length)})


async def _probabilities(tensor: Tensor, service: Service, model: ServedModel) -> tuple[np.ndarray, list[str] | None]:
    if tensor.name == "image":
        if tensor.datatype != "FP32":
            raise MalformedRequest(f"input 'image' must be FP32, got {tensor.datatype}")
        if len(tensor.shape) != 4 or tensor.shape[1:] != [1, 28, 28]:
            raise MalformedRequest(f"input 'image' must have shape [N, 1, 28, 28], got {tensor.shape}")
        pixels = np.asarray(tensor.data, dtype=np.float32).reshape(-1, 28, 28)
        if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 1:
            raise MalformedRequest("input 'image' must hold ink intensities in [0, 1] (an MNIST pixel / 255)")
        probs, judged = await score_ink_maps(pixels, service, model)
        return probs.numpy(), [str(v) for v in judged] if judged is not None else None
    if tensor.name == "image_bytes":
        if tensor.datatype != "BYTES":
            raise MalformedRequest(f"input 'image_bytes' must be BYTES, got {tensor.datatype}")
        if len(tensor.shape) != 1:
            raise MalformedRequest(f"input 'image_bytes' must have shape [N], got {tensor.shape}")
        batch = await score_uploads([bytes(b) for b in tensor.data], service, model)
        failed = [(i, r) for i, r in enumerate(batch.results) if isinstance(r, DomainError)]
        if failed:
            i, error = failed[0]
            raise MalformedRequest(f"image_bytes[{i}]: {error.message}")
        scored = [r for r in batch.results if not isinstance(r, DomainError)]
        verdicts = [str(r.verdict) for r in scored if r.verdict is not None]
        return np.stack([r.probabilities.numpy() for r in scored]), verdicts if len(verdicts) == len(scored) else None
    raise MalformedRequest(f"unknown input {tensor.name!r}; this model takes 'image' or 'image_bytes'")
