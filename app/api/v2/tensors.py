"""Open Inference Protocol tensors on the wire: JSON `data` or the binary tensor extension.

A request is a JSON header, optionally followed by binary tensor data; the header's length
then comes in `Inference-Header-Content-Length`, and each input whose data is binary says
its size in `parameters.binary_data_size`, in input order. BYTES elements are, in binary,
a 4-byte little-endian length and the bytes; in JSON, strings (for `image_bytes`: the
file base64-encoded, since a JSON string cannot carry raw bytes).
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlens.app.core.errors import MalformedRequest

DTYPES: dict[str, np.dtype[Any]] = {"FP32": np.dtype("<f4"), "INT64": np.dtype("<i8")}
HEADER_LENGTH = "Inference-Header-Content-Length"


@dataclass
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray | list[bytes]


@dataclass
class InferRequest:
    id: str | None
    inputs: list[Tensor]
    outputs: dict[str, bool] | None  # requested output -> binary?; None: all, binary by default flag
    binary_default: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)


def _header(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    if header_length is None:
        json_part, binary = body, b""
    else:
        try:
            n = int(header_length)
        except ValueError:
            raise MalformedRequest(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
        if not 0 <= n <= len(body):
            raise MalformedRequest(f"{HEADER_LENGTH} {n} does not fit a body of {len(body)} bytes")
        json_part, binary = body[:n], body[n:]
    try:
        header = json.loads(json_part)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedRequest(f"the request is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise MalformedRequest("the request must be a JSON object")
    return header, binary


def _shape(raw: Any, name: str) -> list[int]:
    if not isinstance(raw, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw):
        raise MalformedRequest(f"input {name!r}: shape must be a list of non-negative integers")
    return raw


def _bytes_elements(blob: bytes, name: str) -> list[bytes]:
    out, i = [], 0
    while i < len(blob):
        if i + 4 > len(blob):
            raise MalformedRequest(f"input {name!r}: truncated BYTES element length")
        (n,) = struct.unpack_from("<I", blob, i)
        if i + 4 + n > len(blob):
            raise MalformedRequest(f"input {name!r}: BYTES element of {n} bytes runs past the data")
        out.append(blob[i + 4 : i + 4 + n])
        i += 4 + n
    return out


def _json_bytes(data: Any, name: str) -> list[bytes]:
    flat = data if isinstance(data, list) else [data]
    out = []
    for item in flat:
        if not isinstance(item, str):
            raise MalformedRequest(f"input {name!r}: BYTES data in JSON must be base64 strings")
        try:
            out.append(base64.b64decode(item, validate=True))
        except binascii.Error:
            raise MalformedRequest(f"input {name!r}: BYTES data in JSON must be base64 strings") from None
    return out


def _json_numbers(data: Any, dtype: np.dtype, name: str) -> np.ndarray:
    try:
        return np.asarray(data, dtype=dtype).ravel()
    except (ValueError, TypeError):
        raise MalformedRequest(f"input {name!r}: data must be numbers") from None


def parse_request(body: bytes, header_length: str | None) -> InferRequest:
    header, binary = _header(body, header_length)
    raw_inputs = header.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise MalformedRequest("the request needs a non-empty 'inputs' list")
    inputs, offset = [], 0
    for raw in raw_inputs:
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("name"), str)
            or not isinstance(raw.get("datatype"), str)
        ):
            raise MalformedRequest("each input needs a 'name', a 'datatype' and a 'shape'")
        name, datatype = raw["name"], raw["datatype"]
        shape = _shape(raw.get("shape"), name)
        params = raw.get("parameters") or {}
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise MalformedRequest(f"input {name!r}: binary_data_size {size!r} does not fit the binary data")
            blob, offset = binary[offset : offset + size], offset + size
            if datatype == "BYTES":
                data: np.ndarray | list[bytes] = _bytes_elements(blob, name)
            elif datatype in DTYPES:
                if size % DTYPES[datatype].itemsize:
                    raise MalformedRequest(f"input {name!r}: {size} bytes is not a whole number of {datatype}")
                data = np.frombuffer(blob, dtype=DTYPES[datatype])
            else:
                raise MalformedRequest(f"input {name!r}: datatype {datatype} is not supported")
        elif "data" in raw:
            if datatype == "BYTES":
                data = _json_bytes(raw["data"], name)
            elif datatype in DTYPES:
                data = _json_numbers(raw["data"], DTYPES[datatype], name)
            else:
                raise MalformedRequest(f"input {name!r}: datatype {datatype} is not supported")
        else:
            raise MalformedRequest(f"input {name!r} has neither 'data' nor binary_data_size")
        if len(data) != int(np.prod(shape)):
            raise MalformedRequest(
                f"input {name!r}: shape {shape} needs {int(np.prod(shape))} elements, got {len(data)}"
            )
        inputs.append(Tensor(name, datatype, shape, data))
    if offset != len(binary):
        raise MalformedRequest(f"{len(binary) - offset} bytes of binary data belong to no input")
    params = header.get("parameters") or {}
    binary_default = bool(params.get("binary_data_output", False)) if isinstance(params, dict) else False
    outputs = None
    if header.get("outputs") is not None:
        if not isinstance(header["outputs"], list):
            raise MalformedRequest("'outputs' must be a list")
        outputs = {}
        for out in header["outputs"]:
            if not isinstance(out, dict) or not isinstance(out.get("name"), str):
                raise MalformedRequest("each requested output needs a 'name'")
            p = out.get("parameters") or {}
            outputs[out["name"]] = bool(p.get("binary_data", binary_default)) if isinstance(p, dict) else binary_default
    request_id = header.get("id")
    return InferRequest(str(request_id) if request_id is not None else None, inputs, outputs, binary_default)


def encode_response(header: dict[str, Any], tensors: list[tuple[Tensor, bool]]) -> tuple[bytes, int | None]:
    """The response body and, when any tensor went binary, the JSON header's length."""
    outputs, blobs = [], []
    for tensor, binary in tensors:
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if tensor.datatype == "BYTES":  # outputs' BYTES are text (the verdict): plain strings in JSON
            items = [bytes(b) for b in tensor.data]
            if binary:
                blob = b"".join(struct.pack("<I", len(b)) + b for b in items)
                entry["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                entry["data"] = [b.decode() for b in items]
            outputs.append(entry)
            continue
        array = np.asarray(tensor.data)
        if binary:
            blob = array.astype(DTYPES[tensor.datatype]).tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = array.ravel().tolist()
        outputs.append(entry)
    body = json.dumps({**header, "outputs": outputs}, separators=(",", ":")).encode()
    if not blobs:
        return body, None
    return body + b"".join(blobs), len(body)
