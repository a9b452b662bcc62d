"""Named domain errors and the one place that turns errors into JSON responses.

Every error body is {"error": {"code": ..., "message": ...}}.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

log = logging.getLogger(__name__)


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class EmptyImage(ApiError):
    code = "empty_image"


class UnreadableImage(ApiError):
    code = "unreadable_image"


class BlankImage(ApiError):
    code = "blank_image"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class ImageTooLarge(ApiError):
    status = 413
    code = "image_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class MalformedRequest(ApiError):
    status = 422
    code = "malformed_request"


class UnknownLayer(ApiError):
    status = 404
    code = "unknown_layer"


class UnsupportedMethod(ApiError):
    code = "unsupported_method"


class UnknownModel(ApiError):
    status = 404
    code = "unknown_model"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Overloaded(ApiError):
    status = 503
    code = "overloaded"


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(422, "malformed_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(ClientDisconnect)
    async def _gone(_: Request, __: ClientDisconnect) -> JSONResponse:
        # the client hung up mid-upload: nobody will read this, but it is no server error
        return error_response(400, "client_disconnected", "the client closed the connection mid-request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error_response(
            exc.status_code,
            codes.get(exc.status_code, "http_error"),
            str(exc.detail),
            getattr(exc, "headers", None),
        )
