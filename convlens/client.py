"""A Python client for a running convlens server, sync and async, on httpx.

    from convlens.client import Client
    with Client("http://127.0.0.1:8000") as c:
        print(c.predict("digit.png").digit)

Answers are the pydantic models the server itself answers with; every API error is raised
as `ConvlensError`, carrying the API's status, code and message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from convlens.app.api.v1.schemas import (
    BatchResponse,
    Explanation,
    FeatureMapsResponse,
    ModelCard,
    ModelList,
    Prediction,
    ReadResponse,
    ShiftExperiment,
)

__all__ = ["AsyncClient", "Client", "ConvlensError"]

M = TypeVar("M", bound=BaseModel)
Image = str | Path | bytes


class ConvlensError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.status, self.code, self.message = status, code, message


def _bytes(image: Image) -> tuple[str, bytes]:
    if isinstance(image, bytes):
        return "image", image
    path = Path(image)
    return path.name, path.read_bytes()


def _check(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    try:
        error = response.json()["error"]
        code, message = error["code"], error["message"]
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", response.text[:200] or response.reason_phrase
    raise ConvlensError(response.status_code, code, message)


def _params(model: str | None, **extra: Any) -> dict[str, Any]:
    params = {k: v for k, v in extra.items() if v is not None}
    if model is not None:
        params["model"] = model
    return params


class _Requests:
    """What each call sends: (method, path, params, files) -> the answer's model."""

    @staticmethod
    def predict(image: Image, model: str | None) -> tuple[str, str, dict, Any]:
        return "POST", "/v1/predict", _params(model), {"file": _bytes(image)}

    @staticmethod
    def predict_batch(images: list[Image], model: str | None) -> tuple[str, str, dict, Any]:
        return "POST", "/v1/predict/batch", _params(model), [("files", _bytes(i)) for i in images]

    @staticmethod
    def read(image: Image, model: str | None) -> tuple[str, str, dict, Any]:
        return "POST", "/v1/read", _params(model), {"file": _bytes(image)}

    @staticmethod
    def feature_maps(image: Image, model: str | None, layers: list[str] | None, png: bool) -> tuple:
        params = _params(model, layers=",".join(layers) if layers else None, png=str(png).lower())
        return "POST", "/v1/feature-maps", params, {"file": _bytes(image)}

    @staticmethod
    def feature_map_png(image: Image, layer: str, model: str | None) -> tuple:
        return "POST", f"/v1/feature-maps/{layer}.png", _params(model), {"file": _bytes(image)}

    @staticmethod
    def explain(image: Image, model: str | None, method: str, target: int | None) -> tuple:
        return "POST", "/v1/explain", _params(model, method=method, target=target), {"file": _bytes(image)}

    @staticmethod
    def shift(image: Image, max_shift: int) -> tuple:
        return "POST", "/v1/experiments/shift", {"max_shift": max_shift}, {"file": _bytes(image)}


class Client:
    def __init__(self, url: str = "http://127.0.0.1:8000", api_key: str | None = None, timeout: float = 30) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, request: tuple, model: type[M] | None = None) -> Any:
        method, path, params, files = request
        response = _check(self._http.request(method, path, params=params, files=files))
        return model.model_validate_json(response.content) if model else response.content

    def predict(self, image: Image, model: str | None = None) -> Prediction:
        return self._send(_Requests.predict(image, model), Prediction)

    def predict_batch(self, images: list[Image], model: str | None = None) -> BatchResponse:
        return self._send(_Requests.predict_batch(images, model), BatchResponse)

    def read(self, image: Image, model: str | None = None) -> ReadResponse:
        """Every number in a photo or scan, in reading order."""
        return self._send(_Requests.read(image, model), ReadResponse)

    def feature_maps(
        self, image: Image, model: str | None = None, layers: list[str] | None = None, png: bool = False
    ) -> FeatureMapsResponse:
        return self._send(_Requests.feature_maps(image, model, layers, png), FeatureMapsResponse)

    def feature_map_png(self, image: Image, layer: str, model: str | None = None) -> bytes:
        return self._send(_Requests.feature_map_png(image, layer, model))

    def explain(
        self, image: Image, model: str | None = None, method: str = "gradcam", target: int | None = None
    ) -> Explanation:
        return self._send(_Requests.explain(image, model, method, target), Explanation)

    def shift_experiment(self, image: Image, max_shift: int = 4) -> ShiftExperiment:
        return self._send(_Requests.shift(image, max_shift), ShiftExperiment)

    def models(self) -> ModelList:
        return ModelList.model_validate_json(_check(self._http.get("/v1/models")).content)

    def model(self, name: str | None = None) -> ModelCard:
        path = f"/v1/models/{name}" if name else "/v1/model"
        return ModelCard.model_validate_json(_check(self._http.get(path)).content)


class AsyncClient:
    def __init__(self, url: str = "http://127.0.0.1:8000", api_key: str | None = None, timeout: float = 30) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, request: tuple, model: type[M] | None = None) -> Any:
        method, path, params, files = request
        response = _check(await self._http.request(method, path, params=params, files=files))
        return model.model_validate_json(response.content) if model else response.content

    async def predict(self, image: Image, model: str | None = None) -> Prediction:
        return await self._send(_Requests.predict(image, model), Prediction)

    async def predict_batch(self, images: list[Image], model: str | None = None) -> BatchResponse:
        return await self._send(_Requests.predict_batch(images, model), BatchResponse)

    async def read(self, image: Image, model: str | None = None) -> ReadResponse:
        """Every number in a photo or scan, in reading order."""
        return await self._send(_Requests.read(image, model), ReadResponse)

    async def feature_maps(
        self, image: Image, model: str | None = None, layers: list[str] | None = None, png: bool = False
    ) -> FeatureMapsResponse:
        return await self._send(_Requests.feature_maps(image, model, layers, png), FeatureMapsResponse)

    async def feature_map_png(self, image: Image, layer: str, model: str | None = None) -> bytes:
        return await self._send(_Requests.feature_map_png(image, layer, model))

    async def explain(
        self, image: Image, model: str | None = None, method: str = "gradcam", target: int | None = None
    ) -> Explanation:
        return await self._send(_Requests.explain(image, model, method, target), Explanation)

    async def shift_experiment(self, image: Image, max_shift: int = 4) -> ShiftExperiment:
        return await self._send(_Requests.shift(image, max_shift), ShiftExperiment)

    async def models(self) -> ModelList:
        return ModelList.model_validate_json(_check(await self._http.get("/v1/models")).content)

    async def model(self, name: str | None = None) -> ModelCard:
        path = f"/v1/models/{name}" if name else "/v1/model"
        return ModelCard.model_validate_json(_check(await self._http.get(path)).content)
