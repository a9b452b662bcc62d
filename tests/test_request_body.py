"""Reading images out of requests: multipart field(s) or a raw body (app/api/uploads.py)."""

import asyncio

import pytest
from starlette.requests import Request

from benchmarks.harness import BOUNDARY, multipart
from convlens.app.api.uploads import read_upload, read_uploads
from convlens.app.core.errors import MalformedRequest, UnsupportedMediaType


def request(body: bytes, content_type: str) -> Request:
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"content-type", content_type.encode())] if content_type else []
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}, receive)


FORM = f"multipart/form-data; boundary={BOUNDARY}"


def test_one_image_from_a_multipart_field_or_a_raw_body():
    up = asyncio.run(read_upload(request(multipart([("file", b"PNGDATA")]), FORM)))
    assert up.data == b"PNGDATA" and up.filename == "d.png"
    assert asyncio.run(read_upload(request(b"RAW", "image/png"))).data == b"RAW"
    assert asyncio.run(read_upload(request(b"RAW", "application/octet-stream"))).filename is None


@pytest.mark.parametrize(
    ("body", "ctype", "error"),
    [
        (multipart([("image", b"x")]), FORM, MalformedRequest),
        (b"{}", "application/json", UnsupportedMediaType),
        (b"x", "", UnsupportedMediaType),
    ],
)
def test_what_is_not_one_image_is_refused_by_name(body, ctype, error):
    with pytest.raises(error):
        asyncio.run(read_upload(request(body, ctype)))


def test_several_images_in_order_and_at_most_the_limit():
    body = multipart([("files", b"a"), ("files", b"b"), ("note", b"ignored")])
    assert [u.data for u in asyncio.run(read_uploads(request(body, FORM), 2))] == [b"a", b"b"]
    with pytest.raises(MalformedRequest, match="at most 1"):
        asyncio.run(read_uploads(request(body, FORM), 1))
    with pytest.raises(UnsupportedMediaType):
        asyncio.run(read_uploads(request(b"a", "image/png"), 2))
