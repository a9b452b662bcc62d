"""ASGI limits: body size (with and without Content-Length) and total request time."""

import asyncio
import json

import pytest

from convlens.app.core.errors import PayloadTooLarge
from convlens.app.serving.limits import BodyLimitMiddleware, TimeoutMiddleware


def run(mw, scope, chunks):
    sent = []
    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive():
        return queue.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(mw(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body) if body else None


async def reads_everything(scope, receive, send):
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def scope(headers=()):
    return {"type": "http", "method": "POST", "path": "/", "headers": list(headers)}


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    status, body = run(BodyLimitMiddleware(reads_everything, 10), scope([(b"content-length", b"11")]), [b""])
    assert status == 413 and body["error"]["code"] == "payload_too_large"


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit():
    mw = BodyLimitMiddleware(reads_everything, 10)
    assert run(mw, scope(), [b"12345", b"12345"])[0] == 200
    # raised while the app reads: the app's error handler turns it into the 413
    with pytest.raises(PayloadTooLarge):
        run(mw, scope(), [b"123456", b"123456"])
    assert run(mw, scope([(b"content-length", b"ten")]), [b""])[0] == 400


def test_a_request_over_the_time_limit_gets_504():
    async def slow(scope, receive, send):
        await asyncio.sleep(1)

    status, body = run(TimeoutMiddleware(slow, 0.05), scope(), [b""])
    assert status == 504 and body["error"]["code"] == "timeout"
