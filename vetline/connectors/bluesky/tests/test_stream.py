"""Streaming capture against the real AT Protocol reference server (the pinned
@atproto/dev-env): the stream supervisor's loop for one account runs in a thread, with the repo
firehose open; posts published meanwhile reach the archive within seconds, with no scheduled
capture; a stream killed in the middle of a burst and started again resumes from the stored
firehose cursor with nothing lost and nothing archived twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from vetline.archive.models import ArchivedRecord
from vetline.connectors.base import PublishRequest
from vetline.connectors.bluesky.connector import BlueskyConnector, CaptureCursor
from vetline.connectors.bluesky.tests.test_bluesky import tokens
from vetline.connectors.models import CaptureState
from vetline.connectors.stream import AccountStream, StreamSettings, StreamSupervisor

# The supervisor archives from its own thread and database connection: the test's data must
# be committed for it to see it.
pytestmark = pytest.mark.django_db(transaction=True)

SETTINGS = StreamSettings(heartbeat_seconds=1.0, min_backoff_seconds=0.2, page_size=50)
ARRIVAL_SECONDS = 5.0


def wait_for(condition: Callable[[], bool], *, seconds: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - started


class Running:
    """One account's stream in a thread, as ``vetline stream`` runs it."""

    def __init__(self, account: Any, connector: BlueskyConnector) -> None:
        self.stream = AccountStream(
            account.pk, settings=SETTINGS, connector_factory=lambda network: connector
        )
        self.thread = threading.Thread(target=self.stream.run, daemon=True)
        self.thread.start()
        wait_for(
            lambda: self.stream.stats.heartbeats > 0 or not self.thread.is_alive(),
            seconds=30,
            what="the firehose subscription",
        )
        assert self.thread.is_alive(), self.stream.stats

    def stop(self) -> None:
        self.stream.stop_event.set()
        self.thread.join(15)
        assert not self.thread.is_alive(), "the stream did not stop"


def posts(account: Any) -> list[tuple[str, int]]:
    return sorted(
        ArchivedRecord.objects.filter(account=account, kind="post").values_list(
            "remote_id", "version"
        )
    )


def test_published_posts_stream_into_the_archive_and_resume_after_a_kill(
    world: Any, bsky_account: Any, connector: BlueskyConnector
) -> None:
    t = tokens(bsky_account)
    running = Running(bsky_account, connector)  # backfill (empty repository), then live
    try:
        first = connector.publish(tokens=t, request=PublishRequest(text="Streamed at once"))
        latency = wait_for(
            lambda: running.stream.stats.ingested >= 1, seconds=ARRIVAL_SECONDS, what="the post"
        )
        # A burst, and the stream killed as soon as the first of it is archived.
        burst = [
            connector.publish(tokens=t, request=PublishRequest(text=f"Burst {i}")) for i in range(6)
        ]
        wait_for(lambda: running.stream.stats.ingested >= 2, seconds=ARRIVAL_SECONDS, what="burst")
    finally:
        running.stop()
    killed_at = running.stream.stats.ingested
    after_kill = connector.publish(tokens=t, request=PublishRequest(text="While stopped"))

    state = CaptureState.objects.get(account=bsky_account)
    assert state.stream_status == "stopped" and state.stream_last_event_at is not None
    assert CaptureCursor.load(state.cursor).seq is not None  # the firehose position is stored
    assert latency < ARRIVAL_SECONDS

    restarted = Running(bsky_account, connector)
    try:
        wait_for(
            lambda: killed_at + restarted.stream.stats.ingested >= 8,
            seconds=ARRIVAL_SECONDS * 2,
            what="the rest after the restart",
        )
    finally:
        restarted.stop()

    expected = sorted((p.remote_id, 1) for p in [first, *burst, after_kill])
    assert posts(bsky_account) == expected  # nothing lost, nothing twice
    assert restarted.stream.stats.quarantined == 0
    state = CaptureState.objects.get(account=bsky_account)
    assert state.items_captured == ArchivedRecord.objects.filter(account=bsky_account).count()


def test_the_supervisor_streams_connected_accounts_and_stops_cleanly(
    world: Any, bsky_account: Any, connector: BlueskyConnector
) -> None:
    """`vetline stream` as a whole: it finds the connected account itself (the entry point
    says Bluesky streams), streams it, and stops every stream when told to (SIGTERM)."""
    supervisor = StreamSupervisor(
        settings=StreamSettings(refresh_seconds=0.2, heartbeat_seconds=1.0),
        connector_factory=lambda network: connector,
    )
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: (
                bsky_account.pk in supervisor.streams
                and supervisor.streams[bsky_account.pk][0].stats.heartbeats > 0
            ),
            seconds=30,
            what="the supervisor to stream the account",
        )
        post = connector.publish(tokens=tokens(bsky_account), request=PublishRequest(text="Hi"))
        stream = supervisor.streams[bsky_account.pk][0]
        wait_for(lambda: stream.stats.ingested >= 1, seconds=ARRIVAL_SECONDS, what="the post")
    finally:
        supervisor.stop()
        thread.join(20)
    assert not thread.is_alive(), "the supervisor did not stop"
    assert posts(bsky_account) == [(post.remote_id, 1)]
    assert CaptureState.objects.get(account=bsky_account).stream_status == "stopped"
