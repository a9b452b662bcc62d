"""Get image bytes out of a request: multipart field(s) or a raw image body.

Also the body-size guard, as ASGI middleware, so the limit holds for chunked bodies
without Content-Length and for multipart alike, before anything is buffered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import MalformedRequest, PayloadTooLarge, UnsupportedMediaType, error_response

RAW_TYPES = ("image/", "application/octet-stream")


@dataclass
class Upload:
    data: bytes
    filename: str | None = None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _form(request: Request, max_files: int):
    try:
        return await request.form(max_files=max_files, max_fields=max_files + 16)
    except MultiPartException as e:
        raise MalformedRequest(f"malformed multipart body: {e.message}") from e
    except HTTPException as e:  # starlette's word for a missing boundary
        raise MalformedRequest(f"malformed multipart body: {e.detail}") from e


async def read_upload(request: Request) -> Upload:
    """One image: multipart field `file`, or the raw body with an image/* content type."""
    media = _media_type(request)
    if media == "multipart/form-data":
        form = await _form(request, max_files=1)
        item = form.get("file")
        if not isinstance(item, UploadFile):
            fields = ", ".join(sorted(form.keys())) or "none"
            raise MalformedRequest(f"multipart field 'file' with an image is required (got fields: {fields})")
        return Upload(await item.read(), item.filename)
    if media.startswith(RAW_TYPES):
        return Upload(await request.body())
    raise UnsupportedMediaType(
        f"content type {media or '(none)'!r} is not accepted; send multipart/form-data with field "
        "'file', or the image bytes with an image/* content type"
    )


async def read_uploads(request: Request, max_images: int) -> list[Upload]:
    """Several images: repeated multipart field `files`."""
    if _media_type(request) != "multipart/form-data":
        raise UnsupportedMediaType("send multipart/form-data with one or more 'files' fields")
    form = await _form(request, max_files=max_images + 1)
    items = form.getlist("files")
    if not items:
        raise MalformedRequest("multipart field 'files' is required (one per image)")
    if len(items) > max_images:
        raise MalformedRequest(f"{len(items)} images sent; at most {max_images} per batch")
    uploads = []
    for item in items:
        if not isinstance(item, UploadFile):
            raise MalformedRequest("every 'files' field must be a file, not text")
        uploads.append(Upload(await item.read(), item.filename))
    return uploads


class BodyLimitMiddleware:
    """413 for bodies over `max_bytes`: at once from Content-Length, else while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = PayloadTooLarge(f"request body exceeds the limit of {self.max_bytes:,} bytes")
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared < 0:
                await error_response(400, "bad_request", "invalid Content-Length header")(scope, receive, send)
                return
            if declared > self.max_bytes:
                await error_response(too_large.status, too_large.code, too_large.message)(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large
            return message

        await self.app(scope, limited_receive, send)


class TimeoutMiddleware:
    """504 when a request takes longer than `seconds` end to end, slow uploads included,
    so a client that trickles its body cannot hold a connection and its memory forever."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, send_wrapper)
        except TimeoutError:
            if started:  # half a response is out: all we can do is stop
                raise
            message = f"the request took longer than {self.seconds:g} s"
            await error_response(504, "timeout", message)(scope, receive, send)
