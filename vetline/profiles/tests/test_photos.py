from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vetline.profiles.photos import (
    MAX_PHOTO_BYTES,
    PhotoError,
    check_photo,
    sniff_type,
    tiny_png,
)


def _gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00" * 20


def _jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def _webp_vp8x(width: int, height: int) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    body += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def test_accepts_the_four_supported_types_with_their_sizes() -> None:
    png = check_photo(tiny_png(120, 80))
    assert (png.mime_type, png.width_px, png.height_px) == ("image/png", 120, 80)
    assert check_photo(_gif(64, 64)).mime_type == "image/gif"
    jpeg = check_photo(_jpeg(400, 300))
    assert (jpeg.mime_type, jpeg.width_px, jpeg.height_px) == ("image/jpeg", 400, 300)
    webp = check_photo(_webp_vp8x(256, 512))
    assert (webp.mime_type, webp.width_px, webp.height_px) == ("image/webp", 256, 512)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "photo_empty"),
        (b"%PDF-1.7 not a photo", "photo_unsupported_type"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "photo_unsupported_type"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 4, "photo_damaged"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "photo_damaged"),  # truncated before any frame
        (_gif(4, 4), "photo_bad_dimensions"),
        (tiny_png(9000, 40)[:33], "photo_bad_dimensions"),
    ],
)
def test_refuses_bad_uploads_with_a_reason(data: bytes, code: str) -> None:
    with pytest.raises(PhotoError) as caught:
        check_photo(data)
    assert caught.value.code == code
    assert caught.value.message


def test_refuses_an_oversized_photo_and_says_the_limit() -> None:
    data = tiny_png(64, 64) + b"\x00" * MAX_PHOTO_BYTES
    with pytest.raises(PhotoError) as caught:
        check_photo(data)
    assert caught.value.code == "photo_too_large" and "5 MB" in caught.value.message


def test_type_comes_from_the_bytes_not_the_name() -> None:
    assert sniff_type(b"GIF87a....") == "image/gif"
    assert sniff_type(b"hello.png") is None


@given(st.binary(max_size=300))
def test_any_bytes_are_accepted_or_refused_with_a_photo_error(data: bytes) -> None:
    try:
        info = check_photo(data)
    except PhotoError as exc:
        assert exc.code.startswith("photo_")
    else:
        assert info.size_bytes == len(data)
