"""Streaming capture on Mastodon: the user streaming API (server-sent events, recorded in the
shape of docs.joinmastodon.org/methods/streaming, Mastodon 4.3) wakes a capture from the stored
cursor through the REST API, replayed by ``responses`` to the real Mastodon.py client."""

from __future__ import annotations

import io
import json
import queue
import random
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from vetline.connectors.base import StreamUnavailable
from vetline.connectors.mastodon.connector import CursorState, MastodonConnector

from .conftest import HOST, FakeClock, fixture_bytes, fixture_json
from .test_connector import JSON, NOTIFICATIONS, STATUSES, add_lookback_and_profile, q

HANDLE = "@acme@mastodon.example"
STREAM = f"{HOST}/api/v1/streaming/user"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def sse(*events: tuple[str, Any]) -> bytes:
    """Server-sent events as Mastodon's streaming server writes them: a comment line as the
    heartbeat, then ``event:`` and ``data:`` lines, a blank line after each event."""
    out = b":thump\n\n"
    for name, payload in events:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        out += f"event: {name}\ndata: {data}\n\n".encode()
    return out


class Feed(io.RawIOBase):
    """The body of a streaming answer that stays open: it hands over what the test puts in,
    as the server would write it, and ends (EOF) at ``None``."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: queue.Queue[bytes | None] = queue.Queue()
        self.pending = b""
        self.ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.pending and not self.ended:
            chunk = self.chunks.get(timeout=10)
            if chunk is None:
                self.ended = True
            else:
                self.pending = chunk
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def test_events_wake_a_capture_from_the_cursor(rsps: responses.RequestsMock, tokens: Any) -> None:
    connector = MastodonConnector(
        config={"stream_tick_seconds": 0.05}, clock=FakeClock(), rng=random.Random(7)
    )
    rsps.get(
        f"{HOST}/api/v1/instance", body=fixture_bytes("instance_mastodon.json"), content_type=JSON
    )
    new_status = fixture_json("statuses_page2.json")[0]
    feed = Feed()
    feed.chunks.put(b":)\n\n")  # Mastodon's first line once subscribed
    rsps.get(STREAM, body=io.BufferedReader(feed), content_type="text/event-stream")
    # Catch-up when the subscription opens: nothing new. After the events: the new status.
    rsps.get(STATUSES, body=b"[]", content_type=JSON, match=[q(min_id="110000000000000002")])
    rsps.get(
        STATUSES,
        body=json.dumps([new_status]).encode(),
        content_type=JSON,
        match=[q(min_id="110000000000000002")],
    )
    rsps.get(STATUSES, body=b"[]", content_type=JSON, match=[q(min_id=new_status["id"])])
    rsps.get(NOTIFICATIONS, body=b"[]", content_type=JSON, match=[q(min_id="35000002")])
    add_lookback_and_profile(rsps)
    rsps.get(
        f"{HOST}/api/v1/statuses/110000000000000003/history",
        body=fixture_bytes("status_history.json"),
        content_type=JSON,
    )
    cursor = CursorState(statuses="110000000000000002", mentions="35000002").dump()

    pages = []
    with pytest.raises(StreamUnavailable, match="closed the connection"):
        for page in connector.stream(tokens=tokens, handle=HANDLE, cursor=cursor, limit=20):
            pages.append(page)
            assert len(pages) < 50, "the stream did not end with its connection"
            if len(pages) == 1:  # caught up: then a new status and a deletion are announced
                feed.chunks.put(sse(("update", new_status), ("delete", new_status["id"])))
            elif page.items:
                feed.chunks.put(None)  # the server closes the connection
    data_pages = [p for p in pages if p.cursor is not None]
    # The catch-up when the subscription opened (the newest page shows an edit made earlier),
    # then one catch-up for the two events: the new status, nothing twice.
    assert len(data_pages) == 2
    kinds = [
        [(i["remote_id"], i["kind"]) for i in p.items if i["kind"] != "profile_snapshot"]  # type: ignore[index]
        for p in data_pages
    ]
    assert kinds == [
        [("110000000000000003", "edit"), ("110000000000000003", "edit")],
        [(new_status["id"], "direct_message")],
    ]
    assert CursorState.load(data_pages[-1].cursor).statuses == new_status["id"]
    assert rsps.assert_call_count(STREAM, 1)


def test_a_server_without_streaming_is_polled(rsps: responses.RequestsMock, tokens: Any) -> None:
    connector = MastodonConnector(
        config={"stream_connect_seconds": 0.3}, clock=FakeClock(), rng=random.Random(7)
    )
    rsps.get(
        f"{HOST}/api/v1/instance", body=fixture_bytes("instance_mastodon.json"), content_type=JSON
    )
    rsps.get(STREAM, status=404, json={"error": "Not found"})
    with pytest.raises(StreamUnavailable):
        next(iter(connector.stream(tokens=tokens, handle=HANDLE, cursor=None)))
