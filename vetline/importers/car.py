"""Reading AT Protocol repository exports (pure Python, no ORM): CARv1 files of DAG-CBOR blocks.

Streaming: blocks are read one at a time from the file (``iter_blocks``); nothing holds the
whole file. Only the subset of DAG-CBOR that atproto uses is decoded (no indefinite lengths;
tag 42 is a CID). References:

- CARv1: https://ipld.io/specs/transport/car/carv1/
- DAG-CBOR: https://ipld.io/specs/codecs/dag-cbor/spec/
- atproto repository and MST: https://atproto.com/specs/repository
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

MAX_BLOCK_BYTES: Final = 8 * 1024 * 1024  # far above atproto's own record limits
_DAG_CBOR: Final = 0x71
_SHA256: Final = 0x12


class CarError(ValueError):
    """The CAR file cannot be read past ``offset``."""

    def __init__(self, message: str, *, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset:,})")
        self.message = message
        self.offset = offset


class CborError(ValueError):
    """A block is not valid DAG-CBOR."""


@dataclass(frozen=True, slots=True)
class Cid:
    raw: bytes  # the binary CID

    def __str__(self) -> str:
        # CIDv1 string form: multibase "b" (base32, lowercase, unpadded)
        return "b" + base64.b32encode(self.raw).decode().lower().rstrip("=")

    @property
    def codec(self) -> int:
        _, pos = _uvarint(self.raw, 0)
        codec, _ = _uvarint(self.raw, pos)
        return codec

    def digest_matches(self, data: bytes) -> bool | None:
        """Whether ``data`` hashes to this CID (None: a hash function we do not check)."""
        pos = 0
        version, pos = _uvarint(self.raw, pos)
        if version != 1:
            return None
        _, pos = _uvarint(self.raw, pos)
        code, pos = _uvarint(self.raw, pos)
        length, pos = _uvarint(self.raw, pos)
        if code != _SHA256:
            return None
        return hashlib.sha256(data).digest()[:length] == self.raw[pos : pos + length]


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise CborError("a varint runs past the end of the data")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise CborError("a varint is too long")


def _read_cid(data: bytes, pos: int) -> tuple[Cid, int]:
    """A binary CID at ``pos`` (inside a CAR section)."""
    start = pos
    if data[pos : pos + 2] == b"\x12\x20":  # CIDv0: a bare sha2-256 multihash
        return Cid(data[pos : pos + 34]), pos + 34
    _, pos = _uvarint(data, pos)  # version
    _, pos = _uvarint(data, pos)  # codec
    _, pos = _uvarint(data, pos)  # multihash code
    length, pos = _uvarint(data, pos)
    end = pos + length
    if end > len(data):
        raise CborError("a CID runs past the end of its section")
    return Cid(data[start:end]), end


# --------------------------------------------------------------------------- DAG-CBOR


def decode_dag_cbor(data: bytes) -> Any:
    """One DAG-CBOR value. Maps become dicts (string keys), byte strings bytes, CIDs Cid."""
    value, pos = _decode(data, 0, 0)
    if pos != len(data):
        raise CborError(f"{len(data) - pos} trailing bytes after the value")
    return value


def _head(data: bytes, pos: int) -> tuple[int, int, int]:
    if pos >= len(data):
        raise CborError("the value ends early")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        return major, info, pos
    width = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
    if width is None:
        raise CborError(f"unsupported additional information {info} (indefinite length?)")
    if pos + width > len(data):
        raise CborError("the value ends early")
    return major, int.from_bytes(data[pos : pos + width], "big"), pos + width


def _decode(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if depth > 64:
        raise CborError("nested too deeply")
    start = pos
    major, arg, pos = _head(data, pos)
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major in (2, 3):
        end = pos + arg
        if end > len(data):
            raise CborError("a string runs past the end of the block")
        chunk = data[pos:end]
        if major == 2:
            return chunk, end
        try:
            return chunk.decode("utf-8"), end
        except UnicodeDecodeError as exc:
            raise CborError(f"a text string is not valid UTF-8: {exc.reason}") from exc
    if major == 4:
        if arg > len(data):
            raise CborError("an array is longer than the block")
        items = []
        for _ in range(arg):
            item, pos = _decode(data, pos, depth + 1)
            items.append(item)
        return items, pos
    if major == 5:
        if arg > len(data):
            raise CborError("a map is longer than the block")
        result: dict[str, Any] = {}
        for _ in range(arg):
            key, pos = _decode(data, pos, depth + 1)
            if not isinstance(key, str):
                raise CborError("a map key is not a string")
            result[key], pos = _decode(data, pos, depth + 1)
        return result, pos
    if major == 6:
        inner, pos = _decode(data, pos, depth + 1)
        if arg != 42 or not isinstance(inner, bytes) or not inner.startswith(b"\x00"):
            raise CborError(f"unsupported tag {arg}")
        return Cid(inner[1:]), pos
    # major 7: simple values and floats
    initial_info = data[start] & 0x1F
    if initial_info == 20:
        return False, pos
    if initial_info == 21:
        return True, pos
    if initial_info == 22:
        return None, pos
    if initial_info == 27:
        import struct

        return struct.unpack(">d", data[start + 1 : start + 9])[0], pos
    raise CborError(f"unsupported simple value {initial_info}")


def to_json(value: Any) -> Any:
    """A decoded record as JSON data (the atproto JSON conventions: ``{"$link": cid}`` for
    links, ``{"$bytes": base64}`` for bytes)."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, Cid):
        return {"$link": str(value)}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode().rstrip("=")}
    return value


# --------------------------------------------------------------------------- CAR


@dataclass(slots=True)
class Block:
    cid: Cid
    data: bytes
    offset: int  # where the section starts in the file


def _read_varint(fh: BinaryIO, offset: int) -> tuple[int | None, int]:
    value = shift = 0
    read = 0
    while True:
        byte = fh.read(1)
        if not byte:
            if read == 0:
                return None, 0
            raise CarError("the file ends inside a section length", offset=offset)
        read += 1
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value, read
        shift += 7
        if shift > 63:
            raise CarError("a section length is not a valid varint", offset=offset)


def read_header(fh: BinaryIO) -> tuple[list[Cid], int]:
    """The CAR header's root CIDs, and the offset of the first section."""
    length, n = _read_varint(fh, 0)
    if length is None or length > 1024 * 1024:
        raise CarError("not a CAR file (no header)", offset=0)
    data = fh.read(length)
    if len(data) < length:
        raise CarError("the file ends inside the header", offset=n)
    try:
        header = decode_dag_cbor(data)
    except CborError as exc:
        raise CarError(f"the CAR header is not DAG-CBOR: {exc}", offset=n) from exc
    if not isinstance(header, dict) or header.get("version") != 1:
        raise CarError("not a CARv1 file (header version is not 1)", offset=n)
    roots = [r for r in header.get("roots") or [] if isinstance(r, Cid)]
    return roots, n + length


def iter_blocks(fh: BinaryIO, offset: int) -> Iterator[Block]:
    """Each block after the header, in file order. Raises CarError where the file cannot be
    read further (truncated, or a section length that makes no sense)."""
    while True:
        length, n = _read_varint(fh, offset)
        if length is None:
            return
        if length > MAX_BLOCK_BYTES:
            raise CarError(f"a section claims {length:,} bytes, more than any block", offset=offset)
        section = fh.read(length)
        if len(section) < length:
            raise CarError(
                f"the file ends inside a section ({len(section):,} of {length:,} bytes)",
                offset=offset,
            )
        try:
            cid, pos = _read_cid(section, 0)
        except (CborError, IndexError) as exc:
            raise CarError(f"a section does not start with a CID: {exc}", offset=offset) from exc
        yield Block(cid=cid, data=section[pos:], offset=offset)
        offset += n + length


def mst_entries(node: Any) -> Iterator[tuple[str, Cid]]:
    """(record key, record CID) pairs of one MST node (``{"l": …, "e": [{p, k, v, t}]}``)."""
    if not isinstance(node, dict) or not isinstance(node.get("e"), list):
        return
    previous = b""
    for entry in node["e"]:
        if not isinstance(entry, dict):
            return
        prefix, suffix, value = entry.get("p"), entry.get("k"), entry.get("v")
        if not isinstance(prefix, int) or not isinstance(suffix, bytes):
            return
        key = previous[:prefix] + suffix
        previous = key
        if isinstance(value, Cid):
            yield key.decode("utf-8", "replace"), value


def is_mst_node(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"l", "e"} and isinstance(value["e"], list)
