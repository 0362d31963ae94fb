"""One bounded session on a repo firehose (``com.atproto.sync.subscribeRepos``), with the SDK's
:class:`FirehoseSubscribeReposClient`.

Capture is pull-shaped (the scheduler asks for "what happened since this cursor"), the firehose
is push-shaped. A session connects from the stored ``seq`` (or live when there is none), hands
frames over until ``limit`` frames, ``idle_seconds`` without a frame (caught up) or
``max_seconds`` in all, then disconnects. The websocket runs in a thread; frames are handed to
the caller's thread, where the archive work happens.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from atproto_client.models.common import XrpcError  # type: ignore[import-untyped]
from atproto_firehose import FirehoseSubscribeReposClient, parse_subscribe_repos_message  # type: ignore[import-untyped]
from atproto_firehose.exceptions import FirehoseError  # type: ignore[import-untyped]
from atproto_subscription.frames import ErrorFrame, Frame  # type: ignore[import-untyped]
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

_END = object()


class FirehoseUnavailable(Exception):
    """The firehose could not be reached or refused us (the caller falls back to polling)."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class _BoundedClient(FirehoseSubscribeReposClient):
    """Connects once: a dropped connection ends the session instead of reconnecting with the
    cursor it started from (which would replay what was already handed over)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connected = threading.Event()
        self.failure: BaseException | None = None

    def _get_client(self) -> Any:
        client = super()._get_client()
        self.connected.set()
        return client

    def _handle_websocket_error_or_stop(self, exception: Exception) -> bool:
        self.failure = exception
        return True


@dataclass
class Session:
    url: str
    cursor: int | None
    idle_seconds: float = 2.0
    max_seconds: float = 10.0
    connect_timeout_seconds: float = 10.0
    infos: list[str] = field(default_factory=list)
    #: continuous (the stream supervisor): never ends on its own; quiet yields
    #: ``("#idle", None)`` instead of ending, and ``max_seconds`` is ignored. A closed
    #: connection raises :class:`FirehoseUnavailable`.
    continuous: bool = False
    #: continuous: how long without any frame between two ``#idle`` (heartbeats); after a
    #: frame, ``idle_seconds`` of quiet yields ``#idle`` (the caller hands over a page)
    tick_seconds: float = 1.0

    def frames(self) -> Generator[Any, None, None]:
        """``("#connected", None)`` once connected, then (type, parsed message) for each
        ``#commit``, ``#sync``, ``#identity`` and ``#account``; ``#info`` names are collected
        in :attr:`infos`. Raises :class:`FirehoseUnavailable` when no
        connection could be made or the server answered with an error frame."""
        base = self.url.removesuffix("/com.atproto.sync.subscribeRepos")
        params = {"cursor": self.cursor} if self.cursor is not None else None
        # In continuous mode the PDS may stay silent for long: its websocket pings keep the
        # connection alive, so the receive timeout only bounds a dead connection.
        recv_timeout = 300.0 if self.continuous else self.max_seconds + 5
        client = _BoundedClient(params=params, base_uri=base, recv_timeout=recv_timeout)
        inbox: queue.Queue[Any] = queue.Queue(maxsize=10_000)

        def run() -> None:
            try:
                client.start(inbox.put)
            except BaseException as exc:
                client.failure = exc
            finally:
                inbox.put(_END)

        thread = threading.Thread(target=run, name="bluesky-firehose", daemon=True)
        thread.start()
        try:
            started = time.monotonic()
            while not client.connected.is_set():
                if client.failure is not None or not thread.is_alive():
                    raise _unavailable(client.failure)
                if time.monotonic() - started > self.connect_timeout_seconds:
                    raise FirehoseUnavailable("the firehose did not answer in time")
                client.connected.wait(0.05)
            yield "#connected", None
            deadline = time.monotonic() + self.max_seconds
            pending = False  # continuous: frames handed over since the last "#idle"
            while True:
                if self.continuous:
                    remaining = self.idle_seconds if pending else self.tick_seconds
                else:
                    remaining = min(self.idle_seconds, deadline - time.monotonic())
                if remaining <= 0:
                    return
                try:
                    frame = inbox.get(timeout=remaining)
                except queue.Empty:
                    if self.continuous:
                        pending = False
                        yield "#idle", None
                        continue
                    return  # caught up
                pending = True
                if frame is _END:
                    if isinstance(client.failure, FirehoseError) or self.continuous:
                        raise _unavailable(client.failure)
                    return
                message = parse_subscribe_repos_message(frame)
                if frame.type == "#info":
                    self.infos.append(str(getattr(message, "name", "")))
                    continue
                yield frame.type, message
        finally:
            client.stop()
            thread.join(timeout=5)


def _unavailable(exc: BaseException | None) -> FirehoseUnavailable:
    if exc is None:
        return FirehoseUnavailable("the firehose closed the connection")
    code = ""
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, XrpcError):
            code = arg.error or ""
    return FirehoseUnavailable(f"firehose: {code or type(exc).__name__}", code=code)


def head_seq(url: str, *, timeout_seconds: float = 0.5, max_probes: int = 128) -> int:
    """The firehose's current sequence number.

    No XRPC method returns it, but ``subscribeRepos`` refuses a cursor beyond it with a
    ``FutureCursor`` error frame and otherwise starts streaming after the cursor. An
    exponential then binary search over cursors finds it in about 2·log2(seq) short
    connections, most of which answer at once. Capture calls this once per account, before
    the backfill listing, so the firehose resumes exactly where the listing began."""
    probes = 0

    def accepted(cursor: int) -> bool:
        nonlocal probes
        probes += 1
        if probes > max_probes:
            raise FirehoseUnavailable("could not locate the firehose position")
        try:
            with connect(f"{url}?cursor={cursor}", open_timeout=10, close_timeout=0.1) as ws:
                try:
                    raw = ws.recv(timeout_seconds)
                except TimeoutError:
                    return True  # accepted, nothing after the cursor: it is the head
        except ConnectionClosed:
            return False
        except OSError as exc:
            raise FirehoseUnavailable(f"firehose: {type(exc).__name__}") from exc
        if isinstance(raw, str):
            return True
        return not isinstance(Frame.from_bytes(raw), ErrorFrame)

    low, high = 0, 1
    while accepted(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if accepted(middle):
            low = middle
        else:
            high = middle
    return low
