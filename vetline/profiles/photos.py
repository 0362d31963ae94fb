"""Checks on an uploaded profile photo (plain Python, no ORM, no image library).

The type is decided by the file's own bytes (its signature), never by its name or by the
Content-Type the browser sent, and the header is read far enough to find the picture's size, so
a renamed text file or a truncated image is refused with a clear reason. The bytes are stored
unchanged (content-addressed) once they pass.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

MAX_PHOTO_BYTES: Final = 5 * 1024 * 1024
MIN_PHOTO_PIXELS: Final = 32  # each side
MAX_PHOTO_PIXELS: Final = 8192  # each side

SUPPORTED: Final = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WebP",
}


class PhotoError(ValueError):
    """The upload is not a photo Vetline accepts; the message says why, in the user's words."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class PhotoInfo:
    mime_type: str
    width_px: int
    height_px: int
    size_bytes: int


def sniff_type(data: bytes) -> str | None:
    """The MIME type the bytes say they are, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise PhotoError("The PNG file is damaged (no image header).", code="photo_damaged")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _gif_size(data: bytes) -> tuple[int, int]:
    if len(data) < 10:
        raise PhotoError("The GIF file is damaged (too short).", code="photo_damaged")
    width, height = struct.unpack("<HH", data[6:10])
    return width, height


_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            break
        if marker in _SOF_MARKERS:
            if i + 9 > n:
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    raise PhotoError(
        "The JPEG file is damaged or truncated (no frame header).", code="photo_damaged"
    )


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise PhotoError("The WebP file is damaged (no image header).", code="photo_damaged")


_SIZERS: Final = {
    "image/jpeg": _jpeg_size,
    "image/png": _png_size,
    "image/gif": _gif_size,
    "image/webp": _webp_size,
}


def check_photo(data: bytes, *, max_bytes: int = MAX_PHOTO_BYTES) -> PhotoInfo:
    """Accept ``data`` as a profile photo or raise :class:`PhotoError` saying why."""
    if not data:
        raise PhotoError("The photo file is empty.", code="photo_empty")
    if len(data) > max_bytes:
        raise PhotoError(
            f"The photo is too large ({len(data) / 1024 / 1024:.1f} MB); the limit is "
            f"{max_bytes / 1024 / 1024:.0f} MB.",
            code="photo_too_large",
        )
    mime = sniff_type(data)
    if mime is None:
        raise PhotoError(
            "This file is not a supported photo. Upload a JPEG, PNG, GIF or WebP image.",
            code="photo_unsupported_type",
        )
    width, height = _SIZERS[mime](data)
    if not (MIN_PHOTO_PIXELS <= width <= MAX_PHOTO_PIXELS) or not (
        MIN_PHOTO_PIXELS <= height <= MAX_PHOTO_PIXELS
    ):
        raise PhotoError(
            f"The photo is {width} by {height} pixels; each side must be between "
            f"{MIN_PHOTO_PIXELS} and {MAX_PHOTO_PIXELS} pixels.",
            code="photo_bad_dimensions",
        )
    return PhotoInfo(mime_type=mime, width_px=width, height_px=height, size_bytes=len(data))


def tiny_png(width: int = 64, height: int = 64) -> bytes:
    """A valid, solid-colour PNG (used by the demo and the tests; no image library needed)."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x1f\x6f\xb4" * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )
