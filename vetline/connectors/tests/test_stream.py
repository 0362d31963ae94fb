"""The stream supervisor with a scripted streaming connector (the sandbox connector, told it
streams): reconnection with backoff, the polling fallback, the cursor compare-and-set with the
scheduled capture, the recorded health and its audit trail, and the scheduler leaving a
streaming account alone. The real stream (the Bluesky firehose) is tested against the AT
Protocol reference server in vetline/connectors/bluesky/tests/test_stream.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone

from vetline.archive.models import ArchivedRecord
from vetline.audit.models import AuditEvent
from vetline.connectors import actions
from vetline.connectors.base import (
    ActivityPage,
    Connector,
    StreamUnavailable,
    TransientError,
    Unsupported,
)
from vetline.connectors.models import CaptureState
from vetline.connectors.sandbox.connector import SandboxConnector
from vetline.connectors.states import IllegalStreamTransition, StreamState, check_stream_transition
from vetline.connectors.stream import (
    AccountStream,
    StreamSettings,
    StreamSupervisor,
    backoff_seconds,
)
from vetline.core.errors import Conflict

pytestmark = pytest.mark.django_db

SETTINGS = StreamSettings(
    min_backoff_seconds=1.0,
    max_backoff_seconds=8.0,
    failures_before_polling=3,
    poll_interval_seconds=60.0,
    stream_retry_seconds=300.0,
    heartbeat_seconds=0.0,
)


def item(n: int) -> dict[str, Any]:
    return {
        "remote_id": f"stream-{n}",
        "kind": "post",
        "direction": "outbound",
        "text": f"Streamed post {n}",
        "author": "acme-training",
        "network_timestamp": "2026-12-05T10:00:00Z",
    }


HEARTBEAT = ActivityPage(items=[], cursor=None)


class Waits(threading.Event):
    """The stop event, recording every wait instead of waiting; sets itself after ``limit``
    waits (or when a script runs out) so the loop under test ends."""

    def __init__(self, limit: int = 10) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.limit = limit

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0.0))
        if len(self.waits) >= self.limit:
            self.set()
        return self.is_set()


Step = Callable[[str | None], Iterator[ActivityPage]]


class Scripted(SandboxConnector):
    """The sandbox connector (real tokens, real polling), streaming from a script: one step
    per connection, each given the cursor it was opened from."""

    capabilities = dataclasses.replace(SandboxConnector.capabilities, streaming=True)

    def __init__(self, steps: list[Step], stop: threading.Event) -> None:
        super().__init__()
        self.steps = steps
        self.stop = stop
        self.cursors: list[str | None] = []

    def stream(
        self, *, tokens: Any, handle: str, cursor: str | None, limit: int = 100
    ) -> Iterator[ActivityPage]:
        self.cursors.append(cursor)
        if len(self.cursors) > len(self.steps):
            self.stop.set()
            return iter([HEARTBEAT])
        return self.steps[len(self.cursors) - 1](cursor)


def fail(exc: Exception) -> Step:
    def step(cursor: str | None) -> Iterator[ActivityPage]:
        raise exc
        yield HEARTBEAT  # pragma: no cover (a generator that fails when first asked)

    return step


def pages(*script: ActivityPage | Exception) -> Step:
    def step(cursor: str | None) -> Iterator[ActivityPage]:
        for entry in script:
            if isinstance(entry, Exception):
                raise entry
            yield entry

    return step


def run(
    account: Any, steps: list[Step], *, limit: int = 10, settings: StreamSettings = SETTINGS
) -> tuple[AccountStream, Scripted]:
    stop = Waits(limit)
    connector = Scripted(steps, stop)

    def factory(network: str) -> Connector:
        return connector

    stream = AccountStream(
        account.pk, settings=settings, connector_factory=factory, stop=stop, rng=lambda: 1.0
    )
    stream.run()
    return stream, connector


def stream_events(account: Any) -> list[str]:
    return list(
        AuditEvent.objects.filter(
            action__startswith="connectors.stream.", object_id=str(account.pk)
        )
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_backoff_is_exponential_capped_and_jittered() -> None:
    assert [backoff_seconds(n, base=1, cap=30, rng=lambda: 1.0) for n in range(1, 8)] == [
        1,
        2,
        4,
        8,
        16,
        30,
        30,
    ]
    assert backoff_seconds(3, base=1, cap=30, rng=lambda: 0.0) == 2  # half at least
    assert backoff_seconds(0, base=1, cap=30) == 0
    assert backoff_seconds(10_000, base=1, cap=30, rng=lambda: 1.0) == 30


def test_reconnects_with_backoff_and_archives_as_pages_arrive(world: Any, connected: Any) -> None:
    stream, connector = run(
        connected,
        [
            fail(TransientError("connection reset")),
            fail(TransientError("connection reset")),
            pages(
                ActivityPage(items=[item(1), item(2)], cursor="c1"),
                HEARTBEAT,
                StreamUnavailable("the firehose closed the connection"),
            ),
            pages(ActivityPage(items=[item(2), item(3)], cursor="c2"), HEARTBEAT),
        ],
    )
    # Two failed connections: 1 s, then 2 s. The drop after working: 1 s again, not 4.
    assert stream.stop_event.waits == [1.0, 2.0, 1.0]  # type: ignore[attr-defined]
    assert connector.cursors == [None, None, None, "c1", "c2"]
    assert sorted(
        ArchivedRecord.objects.filter(account=connected).values_list("remote_id", flat=True)
    ) == [
        "stream-1",
        "stream-2",
        "stream-3",
    ]
    assert stream.stats.ingested == 3 and stream.stats.duplicates == 1
    state = CaptureState.objects.get(account=connected)
    assert (state.cursor, state.has_cursor, state.items_captured) == ("c2", True, 3)
    assert state.stream_status == "stopped" and state.stream_last_event_at is not None
    assert state.last_success_at is not None and state.stream_heartbeat_at is not None
    assert stream.stats.statuses == [
        "reconnecting",
        "streaming",
        "reconnecting",
        "streaming",
        "stopped",
    ]
    assert stream_events(connected) == [
        "connectors.stream.reconnecting",
        "connectors.stream.streaming",
        "connectors.stream.reconnecting",
        "connectors.stream.streaming",
        "connectors.stream.stopped",
    ]
    reconnecting = (
        AuditEvent.objects.filter(action="connectors.stream.reconnecting").order_by("id").first()
    )
    assert reconnecting is not None and reconnecting.after["stream_error"] == "connection reset"


def test_falls_back_to_polling_then_streams_again(world: Any, connected: Any) -> None:
    stream, connector = run(
        connected,
        [
            fail(StreamUnavailable("firehose: ConnectionRefusedError")),
            pages(ActivityPage(items=[item(1)], cursor="c1"), HEARTBEAT),
        ],
        settings=dataclasses.replace(SETTINGS, stream_retry_seconds=0.0),
    )
    # Unreachable from the start: straight to polling (the real sandbox capture, which
    # succeeds), waiting the poll interval; then streaming is tried again and works.
    assert stream.stats.polls == 1
    assert stream.stop_event.waits == [SETTINGS.poll_interval_seconds]  # type: ignore[attr-defined]
    assert connector.cursors == [None, None, "c1"]
    assert stream.stats.statuses == ["polling", "streaming", "stopped"]
    assert AuditEvent.objects.get(action="connectors.stream.polling").after["stream_error"] == (
        "firehose: ConnectionRefusedError"
    )
    state = CaptureState.objects.get(account=connected)
    assert state.cursor == "c1" and state.last_success_at is not None


def test_repeated_failures_fall_back_to_polling(world: Any, connected: Any) -> None:
    stream, _ = run(connected, [fail(TransientError("HTTP 502"))] * 3, limit=3)
    assert stream.stop_event.waits[:2] == [1.0, 2.0]  # type: ignore[attr-defined]
    assert stream.stats.statuses[:2] == ["reconnecting", "polling"]
    assert stream.stats.polls == 1


def test_unsupported_streaming_polls(world: Any, connected: Any) -> None:
    stream, _ = run(connected, [fail(Unsupported("no streaming API"))], limit=1)
    assert stream.stats.statuses == ["polling", "stopped"] and stream.stats.polls == 1


def test_a_scheduled_capture_in_between_supersedes_the_stream(world: Any, connected: Any) -> None:
    """Compare-and-set: the schedule advanced the cursor while the stream held a page; the
    page is dropped and the stream reopens from the stored cursor (never backwards)."""

    def meanwhile(cursor: str | None) -> Iterator[ActivityPage]:
        yield ActivityPage(items=[item(1)], cursor="c1")
        CaptureState.objects.filter(account=connected).update(cursor="scheduled-c5")
        yield ActivityPage(items=[item(2)], cursor="c2")  # built from c1: stale now

    stream, connector = run(connected, [meanwhile, pages(HEARTBEAT)])
    assert connector.cursors[:2] == [None, "scheduled-c5"]
    assert stream.stats.superseded == 1
    assert CaptureState.objects.get(account=connected).cursor == "scheduled-c5"
    assert list(
        ArchivedRecord.objects.filter(account=connected).values_list("remote_id", flat=True)
    ) == ["stream-1"]


def test_stops_when_the_account_is_disconnected(world: Any, connected: Any) -> None:
    from vetline.connectors.models import Connection

    Connection.objects.filter(account=connected).update(status="disconnected")
    stream, connector = run(connected, [pages(HEARTBEAT)])
    assert connector.cursors == [] and stream.stats.statuses == []


def test_scheduler_skips_accounts_streaming_with_a_fresh_heartbeat(
    world: Any, connected: Any
) -> None:
    assert connected.pk in actions.capture_due_account_ids()
    actions.record_stream_status(account_id=connected.pk, status=StreamState.STREAMING)
    assert connected.pk not in actions.capture_due_account_ids()
    later = timezone.now() + dt.timedelta(seconds=actions.STREAM_STALE_SECONDS + 1)
    assert connected.pk in actions.capture_due_account_ids(now=later)  # supervisor gone
    actions.record_stream_status(account_id=connected.pk, status=StreamState.POLLING)
    assert connected.pk in actions.capture_due_account_ids()


def test_stream_states_are_declared(world: Any, connected: Any) -> None:
    check_stream_transition("", "streaming")
    with pytest.raises(IllegalStreamTransition):
        check_stream_transition("streaming", "")
    actions.record_stream_status(account_id=connected.pk, status=StreamState.STREAMING)
    with pytest.raises(Conflict):
        actions.record_stream_status(account_id=connected.pk, status=StreamState.NONE)
    # The same state again is a heartbeat, not an event.
    actions.record_stream_status(account_id=connected.pk, status=StreamState.STREAMING)
    assert stream_events(connected) == ["connectors.stream.streaming"]


def test_supervisor_streams_only_streaming_networks_of_its_shard(
    world: Any, connected: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert StreamSupervisor().wanted_ids() == []  # the sandbox does not stream
    monkeypatch.setattr(SandboxConnector, "capabilities", Scripted.capabilities)
    assert StreamSupervisor().wanted_ids() == [connected.pk]
    other = connected.pk % 2
    assert StreamSupervisor(shard=(other, 2)).wanted_ids() == [connected.pk]
    assert StreamSupervisor(shard=(1 - other, 2)).wanted_ids() == []
    with pytest.raises(ValueError):
        StreamSupervisor(shard=(2, 2))


def test_account_page_and_api_show_the_stream_health(
    world: Any, connected: Any, login: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vetline.identity.roles import Role

    monkeypatch.setattr(SandboxConnector, "capabilities", Scripted.capabilities)
    client = login(world.people[Role.ADMINISTRATOR])
    page = client.get(f"/accounts/{connected.pk}/").content.decode()
    assert "Not streamed" in page
    actions.record_stream_status(account_id=connected.pk, status=StreamState.STREAMING)
    actions.record_stream_alive(account_id=connected.pk, delivered=True)
    page = client.get(f"/accounts/{connected.pk}/").content.decode()
    assert ">Streaming</span>" in page and "none yet" not in page
    actions.record_stream_status(
        account_id=connected.pk, status=StreamState.POLLING, error="firehose: FutureCursor"
    )
    page = client.get(f"/accounts/{connected.pk}/").content.decode()
    assert "Polling (stream unavailable)" in page and "firehose: FutureCursor" in page
    # A supervisor that went silent while streaming is called out.
    actions.record_stream_status(account_id=connected.pk, status=StreamState.STREAMING)
    CaptureState.objects.filter(account=connected).update(
        stream_heartbeat_at=timezone.now() - dt.timedelta(minutes=10)
    )
    assert "Stream supervisor silent" in client.get(f"/accounts/{connected.pk}/").content.decode()
    health = client.get(f"/api/connectors/connections/{connected.pk}").json()
    assert health["stream_status"] == "streaming" and health["stream_heartbeat_at"] is not None


def test_a_stream_that_ends_at_once_backs_off_instead_of_spinning(
    world: Any, connected: Any
) -> None:
    stream, connector = run(connected, [pages(), pages(), pages(HEARTBEAT)])
    assert stream.stop_event.waits == [1.0, 2.0]  # type: ignore[attr-defined]
    assert len(connector.cursors) == 4
    assert stream.stats.statuses == ["reconnecting", "streaming", "stopped"]


def test_a_disconnection_while_streaming_ends_the_stream(world: Any, connected: Any) -> None:
    from vetline.connectors.models import Connection

    def disconnected_meanwhile(cursor: str | None) -> Iterator[ActivityPage]:
        yield HEARTBEAT
        Connection.objects.filter(account=connected).update(status="disconnected")
        yield ActivityPage(items=[item(1)], cursor="c1")  # not archived: access is gone

    stream, connector = run(connected, [disconnected_meanwhile])
    assert len(connector.cursors) == 1 and stream.stats.statuses == ["streaming", "stopped"]
    assert not ArchivedRecord.objects.filter(account=connected).exists()
