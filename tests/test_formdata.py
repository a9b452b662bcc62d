import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlens.app.api import formdata
from convlens.app.core.errors import MalformedRequest


def encode(files: list[tuple[str, bytes]], data: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A body as a real client (httpx) writes it, and its Content-Type."""
    request = httpx.Request(
        "POST", "http://x/", files=[(name, (f"{name}.png", content, "image/png")) for name, content in files], data=data
    )
    return request.read(), request.headers["content-type"]


def parse(body: bytes, content_type: str, max_parts: int = 100) -> list[formdata.Part]:
    return formdata.parse(body, formdata.boundary_of(content_type), max_parts)


@given(
    st.lists(st.tuples(st.sampled_from(["file", "files", "x"]), st.binary(max_size=300)), min_size=1, max_size=6),
    st.dictionaries(st.sampled_from(["note", "tag"]), st.text(max_size=20)),
)
def test_bodies_written_by_httpx_come_back_byte_for_byte(files, data):
    body, ctype = encode(files, data)
    parts = parse(body, ctype)
    texts = {p.name: p.data.decode() for p in parts if p.filename is None}
    assert texts == data
    assert [(p.name, p.data) for p in parts if p.filename is not None] == files
    assert all(p.filename == f"{p.name}.png" for p in parts if p.filename is not None)


def test_data_that_looks_like_a_boundary_is_not_split():
    boundary = b"b0und"
    tricky = b"x--b0und--\r\n\r\n-b0und\r\n"  # a delimiter only counts right after CRLF
    body = (
        b'preamble\r\n--b0und\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + tricky + b"\r\n--b0und--\r\nepilogue"
    )
    (part,) = formdata.parse(body, boundary, 10)
    assert part.data == tricky and part.filename == "a.png"


def test_utf8_filenames_as_browsers_send_them():
    body, ctype = encode([("file", b"x")])
    body = body.replace(b'filename="file.png"', 'filename="ü 1.png"'.encode())
    assert parse(body, ctype)[0].filename == "ü 1.png"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"no delimiter at all",
        b'--B\r\nContent-Disposition: form-data; name="f"\r\n\r\nnever closed',
        b"--B\r\nno blank line after headers\r\n--B--",
        b"--B\r\nNo-Colon-Here\r\n\r\nx\r\n--B--",
        b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--",
        b"--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--",
        b"--Bgarbage",
    ],
)
def test_malformed_bodies_are_refused(body):
    with pytest.raises(MalformedRequest):
        formdata.parse(body, b"B", 10)


def test_part_count_is_bounded():
    body, ctype = encode([("files", b"x")] * 5)
    assert len(parse(body, ctype, max_parts=5)) == 5
    with pytest.raises(MalformedRequest, match="at most 4"):
        parse(body, ctype, max_parts=4)


def test_missing_boundary_parameter():
    with pytest.raises(MalformedRequest, match="boundary"):
        formdata.boundary_of("multipart/form-data")
