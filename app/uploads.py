"""Get image bytes out of a request: multipart field(s) or a raw image body."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from app.errors import MalformedRequest, UnsupportedMediaType

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
