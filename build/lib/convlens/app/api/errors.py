"""Domain errors as HTTP: one status per error, and every error body
{"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from convlens.app.core import errors as e

log = logging.getLogger(__name__)

STATUS: dict[type[e.DomainError], int] = {
    e.EmptyImage: 400,
    e.UnreadableImage: 400,
    e.BlankImage: 400,
    e.UnsupportedMethod: 400,
    e.Unauthorized: 401,
    e.UnknownLayer: 404,
    e.UnknownModel: 404,
    e.PayloadTooLarge: 413,
    e.ImageTooLarge: 413,
    e.UnsupportedMediaType: 415,
    e.MalformedRequest: 422,
    e.Overloaded: 503,
}


def status_of(error: e.DomainError) -> int:
    return STATUS.get(type(error), 400)


def domain_error_response(error: e.DomainError) -> JSONResponse:
    headers = {"Retry-After": str(error.retry_after_s)} if isinstance(error, e.Overloaded) else None
    return error_response(status_of(error), error.code, error.message, headers)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(e.DomainError)
    async def _domain_error(_: Request, exc: e.DomainError) -> JSONResponse:
        return domain_error_response(exc)

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
