"""A streaming, structural JSON reader (pure Python, no ORM).

It walks a JSON document held in a file-like object of any size and hands out the *exact bytes*
of the values the caller asks for (one array element at a time), so an importer keeps the
original entry as the raw payload and memory stays bounded by the largest single entry, never
by the file. It only tracks strings and brackets to find where a value ends; whether the value
is valid JSON is decided later by ``json.loads`` on those bytes, so a malformed entry is one bad
entry (quarantined), not the end of the file.

    stream = JsonStream(fh)
    stream.skip_prefix()           # e.g. "window.YTD.tweets.part0 = "
    stream.begin_array()
    while stream.next_element():
        entry_bytes = stream.read_value()

Errors: :class:`Truncated` when the input ends inside a value (the partial bytes are on the
exception), :class:`StreamError` for input that is not JSON structure at all (both carry the
byte offset), :class:`Oversized` for a single value over ``max_value`` bytes.
"""

from __future__ import annotations

import json
import re
from typing import BinaryIO, Final

MAX_VALUE_BYTES: Final = 64 * 1024 * 1024
CHUNK_BYTES: Final = 1024 * 1024
MAX_PREFIX_BYTES: Final = 4096

# One regex call per string or bracket: a whole string (escapes included), a bracket, or a lone
# quote (a string that is not terminated within the buffer yet).
_TOKEN: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]|"', re.S)
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_SCALAR_END: Final = re.compile(rb"[,\]}\s]")
_WS: Final = re.compile(rb"[ \t\r\n]*")
_OPEN: Final = frozenset(b"[{")
_QUOTE: Final = ord('"')


class StreamError(ValueError):
    """The input is not the JSON structure expected, at ``offset`` (bytes from the start)."""

    def __init__(self, message: str, *, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset:,})")
        self.message = message
        self.offset = offset


class Truncated(StreamError):
    """The input ends inside a value; ``partial`` holds the bytes of that value read so far."""

    def __init__(self, message: str, *, offset: int, partial: bytes = b"") -> None:
        super().__init__(message, offset=offset)
        self.partial = partial


class Oversized(StreamError):
    """A single value is larger than the reader's limit; reading cannot continue safely."""


class _NeedMore(Exception):
    pass


def _scan_value(buf: bytes, pos: int) -> int:
    """The end of the JSON value starting at ``buf[pos]``; _NeedMore if it ends past the buffer."""
    first = buf[pos]
    if first == _QUOTE:
        m = _STRING.match(buf, pos)
        if m is None:
            raise _NeedMore
        return m.end()
    if first in _OPEN:
        depth = 0
        for m in _TOKEN.finditer(buf, pos):
            start = m.start()
            c = buf[start]
            if c == _QUOTE:
                if m.end() - start == 1:
                    raise _NeedMore
                continue
            if c in _OPEN:
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    return m.end()
        raise _NeedMore
    m = _SCALAR_END.search(buf, pos)
    if m is None:
        raise _NeedMore
    return m.start()


class JsonStream:
    """Pull reader over a binary file; see the module docstring."""

    def __init__(
        self,
        fh: BinaryIO,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        max_value: int = MAX_VALUE_BYTES,
    ) -> None:
        self._fh = fh
        self._chunk = chunk_bytes
        self._max = max_value
        self._buf = b""
        self._pos = 0
        self._base = 0  # absolute offset of _buf[0]
        self._eof = False
        self._first: list[bool] = []  # per open container: no element/member read yet

    @property
    def offset(self) -> int:
        """Bytes of the input consumed so far."""
        return self._base + self._pos

    def _fill(self, at_least: int = 0) -> bool:
        """Read more input (dropping what is consumed). False at the end of the input."""
        if self._eof:
            return False
        if self._pos:
            self._base += self._pos
            self._buf = self._buf[self._pos :]
            self._pos = 0
        data = self._fh.read(max(self._chunk, at_least))
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _skip_ws(self) -> None:
        while True:
            m = _WS.match(self._buf, self._pos)
            self._pos = m.end() if m else self._pos
            if self._pos < len(self._buf) or not self._fill():
                return

    def peek(self) -> int:
        """The next non-blank byte, or -1 at the end of the input."""
        self._skip_ws()
        return self._buf[self._pos] if self._pos < len(self._buf) else -1

    def at_end(self) -> bool:
        return self.peek() == -1

    def skip_prefix(self, *, openers: bytes = b"[{") -> None:
        """Skip anything before the first of ``openers`` (a JavaScript assignment such as
        ``window.YTD.tweets.part0 = ``), at most MAX_PREFIX_BYTES of it."""
        while True:
            for i in range(self._pos, len(self._buf)):
                if self._buf[i] in openers:
                    self._pos = i
                    return
            if len(self._buf) - self._pos > MAX_PREFIX_BYTES or not self._fill():
                raise StreamError(
                    "no JSON array or object near the start of the file", offset=self.offset
                )

    def _expect(self, char: bytes, what: str) -> None:
        got = self.peek()
        if got != char[0]:
            if got == -1:
                raise Truncated(f"the file ends where {what} was expected", offset=self.offset)
            raise StreamError(f"expected {what} but found {bytes([got])!r}", offset=self.offset)
        self._pos += 1

    def begin_array(self) -> None:
        self._expect(b"[", "'[' (a JSON array)")
        self._first.append(True)

    def begin_object(self) -> None:
        self._expect(b"{", "'{' (a JSON object)")
        self._first.append(True)

    def _next(self, close: bytes, what: str) -> bool:
        got = self.peek()
        if got == close[0]:
            self._pos += 1
            self._first.pop()
            return False
        if got == -1:
            raise Truncated(f"the file ends inside {what}", offset=self.offset)
        if self._first[-1]:
            self._first[-1] = False
        else:
            self._expect(b",", f"',' or {close.decode()!r} in {what}")
            if self.peek() == close[0]:  # a trailing comma: tolerated, as browsers do
                self._pos += 1
                self._first.pop()
                return False
        return True

    def next_element(self) -> bool:
        """Move to the next element of the current array; False (array closed) after the last."""
        return self._next(b"]", "an array")

    def next_key(self) -> str | None:
        """The next member's key of the current object (positioned on its value), or None
        (object closed) after the last."""
        if not self._next(b"}", "an object"):
            return None
        start = self.offset
        raw = self.read_value()
        try:
            key = json.loads(raw)
        except ValueError:
            key = None
        if not isinstance(key, str):
            raise StreamError("an object key is not a string", offset=start)
        self._expect(b":", "':' after an object key")
        return key

    def read_value(self) -> bytes:
        """The exact bytes of the next value (an element or a member's value)."""
        if self.peek() == -1:
            raise Truncated("the file ends where a value was expected", offset=self.offset)
        while True:
            try:
                end = _scan_value(self._buf, self._pos)
            except _NeedMore:
                size = len(self._buf) - self._pos
                if size > self._max:
                    raise Oversized(
                        f"a single entry is larger than {self._max:,} bytes", offset=self.offset
                    ) from None
                if self._fill(at_least=size):
                    continue
                if self._buf[self._pos] not in _OPEN and self._buf[self._pos] != _QUOTE:
                    end = len(self._buf)  # a number or literal that ends the file
                else:
                    partial = self._buf[self._pos :]
                    offset = self.offset
                    self._pos = len(self._buf)
                    raise Truncated(
                        "the file ends inside an entry (truncated)", offset=offset, partial=partial
                    ) from None
            value = self._buf[self._pos : end]
            self._pos = end
            return value

    def skip_value(self) -> None:
        self.read_value()
