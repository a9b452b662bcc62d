"""Get image bytes out of a request: multipart field(s) or a raw image body."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from convlens.app.api import formdata
from convlens.app.core.errors import MalformedRequest, UnsupportedMediaType

RAW_TYPES = ("image/", "application/octet-stream")
MAX_EXTRA_FIELDS = 16  # text fields a client may send beside the images (and we ignore)


@dataclass
class Upload:
    data: bytes
    filename: str | None = None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _parts(request: Request, max_parts: int) -> list[formdata.Part]:
    boundary = formdata.boundary_of(request.headers["content-type"])
    return formdata.parse(await request.body(), boundary, max_parts)


async def read_upload(request: Request) -> Upload:
    """One image: multipart field `file`, or the raw body with an image/* content type."""
    media = _media_type(request)
    if media == "multipart/form-data":
        parts = await _parts(request, MAX_EXTRA_FIELDS + 1)
        for part in parts:
            if part.name == "file" and part.filename is not None:
                return Upload(part.data, part.filename)
        fields = ", ".join(sorted({p.name for p in parts})) or "none"
        raise MalformedRequest(f"multipart field 'file' with an image is required (got fields: {fields})")
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
    items = [p for p in await _parts(request, max_images + 1 + MAX_EXTRA_FIELDS) if p.name == "files"]
    if not items:
        raise MalformedRequest("multipart field 'files' is required (one per image)")
    if len(items) > max_images:
        raise MalformedRequest(f"{len(items)} images sent; at most {max_images} per batch")
    if any(item.filename is None for item in items):
        raise MalformedRequest("every 'files' field must be a file, not text")
    return [Upload(item.data, item.filename) for item in items]
