"""Route a requests-based client library (Mastodon.py, tweepy) through the framework's HTTP
helper, and keep the exact bytes of every item of a JSON answer (plain Python, no ORM).

Both client libraries send through a :class:`requests.Session` they let us replace. The
:class:`RetryingSession` below sends each of their requests through
:class:`vetline.connectors.http.HttpClient`, so rate limits (``Retry-After``, the reset headers),
retries with backoff on 5xx and timeouts, the injected clock and token redaction are the
framework's, not each library's. Errors the helper decides on (429 beyond the wait it may take,
5xx after the last attempt, 401) are raised as the framework's typed errors; the libraries wrap
exceptions raised by their session (Mastodon.py as ``MastodonNetworkError``), so
:func:`connector_error_in` finds the typed error again in the exception chain. Other 4xx answers
are handed back to the library, whose own feature detection (a 404 on an optional endpoint) needs
them.

Shared by the Mastodon and X plugins, and available to any plugin built on a requests-based
client library.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from vetline.connectors.base import ConnectorError
from vetline.connectors.http import (
    Clock,
    HttpClient,
    Request,
    Response,
    RetryPolicy,
    SystemClock,
)

Classifier = Callable[[Response, float], ConnectorError | None]


class RetryingSession(requests.Session):
    """A :class:`requests.Session` whose requests all go through the framework's retry helper.

    ``last_response`` is the last successful :class:`requests.Response`: the connectors read the
    exact bytes and headers (``Link``) of an answer from it."""

    def __init__(
        self,
        *,
        classify: Classifier,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        self.classify = classify
        self.clock = clock or SystemClock()
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        self.last_response: requests.Response | None = None
        #: the last answer whatever its status (a 404's body is the raw payload of a deletion)
        self.last_answer: requests.Response | None = None
        self.requests_sent = 0

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        method_s = method.decode() if isinstance(method, bytes) else method
        url_s = url.decode() if isinstance(url, bytes) else url
        kwargs.setdefault("timeout", self.policy.timeout_seconds)
        holder: dict[str, requests.Response] = {}
        session = self

        class _Transport:
            def send(self, request: Request, *, timeout: float) -> Response:
                _rewind(kwargs.get("files"))
                session.requests_sent += 1
                # requests' exceptions are OSErrors: the helper retries them as transient.
                resp = requests.Session.request(session, method_s, url_s, *args, **kwargs)
                holder["response"] = resp
                return Response(resp.status_code, dict(resp.headers.items()), resp.content)

        headers = {str(k): str(v) for k, v in (kwargs.get("headers") or {}).items()}
        client = HttpClient(
            transport=_Transport(),
            clock=self.clock,
            policy=self.policy,
            rng=self.rng,
            classify=self.classify,
        )
        client.send(Request(method_s, url_s, headers=headers))
        response = holder["response"]
        self.last_answer = response
        if response.ok:
            self.last_response = response
        return response


def _rewind(files: Any) -> None:
    """A retried upload must send the file from its start again."""
    if not isinstance(files, Mapping):
        return
    for value in files.values():
        handle = value[1] if isinstance(value, tuple) and len(value) > 1 else value
        seek = getattr(handle, "seek", None)
        if callable(seek):
            seek(0)


def connector_error_in(exc: BaseException) -> ConnectorError | None:
    """The framework error a library wrapped (``raise X`` inside ``except``), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectorError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


# --- Exact bytes of the items of a JSON answer --------------------------------------------------

_WS = " \t\n\r"
_DECODER = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class RawElement:
    """One value of a JSON answer: its exact bytes, and its decoded value. When the bytes are
    not valid UTF-8, ``value`` holds the invalid bytes as lone surrogates: good for reading an
    id, never for archiving (the archive quarantines the bytes with that reason)."""

    raw: bytes
    value: Any
    valid_utf8: bool


@dataclass(frozen=True, slots=True)
class SplitResult:
    elements: list[RawElement]
    #: the bytes after the last complete element when the answer is truncated or malformed
    remainder: bytes = b""

    @property
    def damaged(self) -> bool:
        return bool(self.remainder)


def _text(body: bytes) -> str:
    # surrogateescape keeps invalid bytes recoverable: slicing the text and encoding it back
    # gives exactly the bytes received.
    return body.decode("utf-8", errors="surrogateescape")


def _raw(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


def _element(text: str, start: int, end: int, value: Any) -> RawElement:
    chunk = text[start:end]
    raw = _raw(chunk)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return RawElement(raw, value, False)
    return RawElement(raw, value, True)


def _values(text: str, pos: int, close: str) -> Iterator[tuple[int, int, Any]]:
    """(start, end, value) of the values of the array whose '[' ends just before ``pos``;
    raises ValueError at the first damage."""
    pos = _skip(text, pos)
    if pos < len(text) and text[pos] == close:
        return
    while True:
        pos = _skip(text, pos)
        value, end = _DECODER.raw_decode(text, pos)
        yield pos, end, value
        pos = _skip(text, end)
        if pos >= len(text):
            raise ValueError("truncated")
        if text[pos] == close:
            return
        if text[pos] != ",":
            raise ValueError("expected ','")
        pos += 1


def split_array(body: bytes) -> SplitResult:
    """The elements of a top-level JSON array, each with its exact bytes. Everything from the
    first damaged element on (a truncated answer) is returned as ``remainder``."""
    return _split_array_at(_text(body), 0, body)


def _split_array_at(text: str, pos: int, body: bytes) -> SplitResult:
    pos = _skip(text, pos)
    if pos >= len(text) or text[pos] != "[":
        return SplitResult([], body if body.strip() else b"")
    elements: list[RawElement] = []
    start_of_rest = pos + 1
    try:
        for start, end, value in _values(text, pos + 1, "]"):
            elements.append(_element(text, start, end, value))
            start_of_rest = end
    except ValueError:
        rest = text[start_of_rest:].lstrip(", \t\n\r")
        return SplitResult(elements, _raw(rest) or b"<empty>")
    return SplitResult(elements)


def split_object(body: bytes) -> tuple[dict[str, str], str] | None:
    """The members of a top-level JSON object as (member name -> exact text), and the whole
    text; None when the answer is not a complete JSON object."""
    text = _text(body)
    pos = _skip(text, 0)
    if pos >= len(text) or text[pos] != "{":
        return None
    members: dict[str, str] = {}
    pos = _skip(text, pos + 1)
    if pos < len(text) and text[pos] == "}":
        return members, text
    try:
        while True:
            pos = _skip(text, pos)
            key, pos = _DECODER.raw_decode(text, pos)
            pos = _skip(text, pos)
            if pos >= len(text) or text[pos] != ":":
                return None
            pos = _skip(text, pos + 1)
            _, end = _DECODER.raw_decode(text, pos)
            if isinstance(key, str):
                members[key] = text[pos:end]
            pos = _skip(text, end)
            if pos >= len(text):
                return None
            if text[pos] == "}":
                return members, text
            if text[pos] != ",":
                return None
            pos += 1
    except ValueError:
        return None


def split_member_array(body: bytes, member: str) -> SplitResult | None:
    """The elements of the array under ``member`` of a top-level object (X's ``data``), each
    with its exact bytes; None when the answer is not a complete JSON object."""
    parsed = split_object(body)
    if parsed is None:
        return None
    members, _ = parsed
    if member not in members:
        return SplitResult([])
    chunk = members[member]
    return _split_array_at(chunk, 0, _raw(chunk))


def loads_lenient(body: bytes) -> Any:
    """The answer decoded (invalid bytes kept as surrogates); None when it is not JSON."""
    try:
        return json.loads(_text(body))
    except ValueError:
        return None
