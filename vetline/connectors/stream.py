"""Continuous capture: the stream supervisor (``vetline stream``).

For every connected account whose connector declares ``capabilities.streaming`` it keeps a
subscription open (:meth:`Connector.stream`; Bluesky: the repo firehose from the stored cursor)
in one thread per account, and archives each page as it arrives through
:func:`~vetline.connectors.actions.archive_page`: the same ingest path and the same cursor
compare-and-set as the scheduled capture, so the two never duplicate or go backwards (when the
schedule advanced the cursor meanwhile, the stream restarts from the stored one).

It reconnects with exponential backoff (with jitter), falls back to polling
(:func:`~vetline.connectors.actions.capture_account` every ``poll_interval_seconds``) when the
stream cannot be reached, and tries streaming again later. What it is doing is recorded on the
account's capture state (streaming / reconnecting / polling, last event, heartbeat) and shown
on the account page; while an account streams with a fresh heartbeat the scheduler leaves it
alone. It stops cleanly on :meth:`StreamSupervisor.stop` (SIGTERM in the command). Nothing here
logs a token: connector errors never carry one, and only account ids and messages are logged.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db import close_old_connections, connection
from django.utils import timezone

from vetline.connectors.base import (
    ActivityPage,
    AuthExpired,
    AuthRevoked,
    Connector,
    ConnectorError,
    RateLimited,
    StreamUnavailable,
    Unsupported,
)
from vetline.connectors.states import StreamState
from vetline.core.context import RequestContext, use_context

logger = logging.getLogger(__name__)


def _recycle_connection(*, close: bool = False) -> None:
    """Drop this thread's database connection when it is broken or too old (``close``: in any
    case, at the end of the thread). Never inside a transaction: a loop run in the caller's
    thread (tests, a command in a transaction) keeps the caller's connection."""
    if connection.in_atomic_block:
        return
    if close:
        connection.close()
    else:
        close_old_connections()


@dataclass(frozen=True)
class StreamSettings:
    """How the supervisor paces itself (``VETLINE_STREAM`` in settings; docs/operations.md)."""

    min_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0
    #: consecutive failures to (re)connect before falling back to polling
    failures_before_polling: int = 3
    #: while polling: how often the account is captured, and when streaming is tried again
    poll_interval_seconds: float = 60.0
    stream_retry_seconds: float = 300.0
    #: how often an idle, connected stream records its heartbeat
    heartbeat_seconds: float = 15.0
    #: how often the supervisor looks for accounts connected or disconnected meanwhile
    refresh_seconds: float = 30.0
    page_size: int = 200


def backoff_seconds(
    failures: int, *, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """The wait before reconnecting after ``failures`` consecutive failures (1, 2, …):
    exponential from ``base``, capped at ``cap``, with "equal jitter" (between half and all
    of it) so that many streams dropped together do not reconnect together."""
    if failures <= 0:
        return 0.0
    ceiling: float = min(cap, base * 2.0 ** min(failures - 1, 30))
    return ceiling / 2 + float(rng()) * ceiling / 2


@dataclass
class StreamStats:
    """What one account's stream did (for the command's log, tests and the benchmark)."""

    pages: int = 0
    ingested: int = 0
    duplicates: int = 0
    quarantined: int = 0
    heartbeats: int = 0
    connects: int = 0
    failures: int = 0
    superseded: int = 0
    polls: int = 0
    statuses: list[str] = field(default_factory=list)
    last_ingest_monotonic: float | None = None


class AccountStream:
    """The loop for one account, run in its own thread by :class:`StreamSupervisor`."""

    def __init__(
        self,
        account_id: int,
        *,
        settings: StreamSettings,
        connector_factory: Callable[[str], Connector],
        stop: threading.Event | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.account_id = account_id
        self.settings = settings
        self.connector_factory = connector_factory
        self.stop_event = stop or threading.Event()
        self.rng = rng
        self.stats = StreamStats()
        self.status = StreamState.NONE
        self._last_alive = 0.0
        self._last_wanted_check = time.monotonic()

    # --- state ------------------------------------------------------------------------------
    def _set_status(self, status: StreamState, error: str = "") -> None:
        from vetline.connectors.actions import record_stream_status

        record_stream_status(account_id=self.account_id, status=status, error=error)
        if status != self.status:
            logger.info(
                "connectors.stream.status",
                extra={"account_id": self.account_id, "status": status.value, "error": error},
            )
            self.stats.statuses.append(status.value)
        self.status = status

    def _alive(self, *, delivered: bool) -> None:
        from vetline.connectors.actions import record_stream_alive

        now = time.monotonic()
        if delivered or now - self._last_alive >= self.settings.heartbeat_seconds:
            record_stream_alive(account_id=self.account_id, delivered=delivered)
            self._last_alive = now

    def _wanted(self) -> bool:
        from vetline.connectors.actions import CAPTURABLE
        from vetline.connectors.models import Connection

        found = (
            Connection.objects.filter(account_id=self.account_id, account__is_active=True)
            .values_list("status", flat=True)
            .first()
        )
        return found is not None and found in {s.value for s in CAPTURABLE}

    # --- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        with use_context(RequestContext(channel="job")):
            try:
                self._loop()
            finally:
                try:
                    if self.status not in (StreamState.NONE, StreamState.STOPPED):
                        self._set_status(StreamState.STOPPED)
                except Exception:  # the database may be gone at shutdown
                    logger.exception("connectors.stream.stop_failed")
                _recycle_connection(close=True)

    def _loop(self) -> None:
        s = self.settings
        failures = 0
        polling_until = 0.0
        while not self.stop_event.is_set():
            _recycle_connection()
            if not self._wanted():
                return
            if time.monotonic() < polling_until:
                self._poll()
                self.stop_event.wait(s.poll_interval_seconds)
                continue
            produced = False
            try:
                for _ in self._stream_once():
                    produced = True
                if produced or self.stop_event.is_set():
                    failures = 0  # ended by a stop, a supersession or the server: reconnect now
                    continue
                error = "the stream ended without delivering anything"
                failures += 1
            except Unsupported as exc:
                polling_until = float("inf")
                self._fallback(exc.message, retry_seconds=polling_until)
                continue
            except StreamUnavailable as exc:
                # Dropped after working: reconnect. Unreachable from the start: poll meanwhile.
                error = exc.message
                failures = 1 if produced else s.failures_before_polling
            except RateLimited as exc:
                self._set_status(StreamState.RECONNECTING, exc.message)
                self.stop_event.wait(exc.retry_after)
                continue
            except (AuthExpired, AuthRevoked) as exc:
                # The scheduled capture's path refreshes the tokens, or records the loss of
                # access and alerts; the next round streams with the new tokens or stops.
                error = exc.message
                self._poll()
                failures += 1
            except ConnectorError as exc:
                error = exc.message
                failures = 1 if produced else failures + 1
            except Exception as exc:
                logger.exception("connectors.stream.error", extra={"account_id": self.account_id})
                error = f"internal error: {type(exc).__name__}"
                failures = 1 if produced else failures + 1
            self.stats.failures += 1
            if self.stop_event.is_set():
                return
            if failures >= s.failures_before_polling:
                polling_until = time.monotonic() + s.stream_retry_seconds
                self._fallback(error, retry_seconds=s.stream_retry_seconds)
                failures = 0
                continue
            self._set_status(StreamState.RECONNECTING, error)
            self.stop_event.wait(
                backoff_seconds(
                    failures, base=s.min_backoff_seconds, cap=s.max_backoff_seconds, rng=self.rng
                )
            )

    def _fallback(self, error: str, *, retry_seconds: float) -> None:
        """Poll instead: capture now, then every poll interval until streaming is retried."""
        logger.warning(
            "connectors.stream.polling",
            extra={"account_id": self.account_id, "reason": error, "retry_seconds": retry_seconds},
        )
        self._set_status(StreamState.POLLING, error)
        self._poll()
        self.stop_event.wait(self.settings.poll_interval_seconds)

    def _poll(self) -> None:
        from vetline.accounts.models import SocialAccount
        from vetline.connectors.actions import capture_account

        self.stats.polls += 1
        try:
            network = SocialAccount.objects.values_list("network", flat=True).get(
                pk=self.account_id
            )
            outcome = capture_account(
                account_id=self.account_id,
                page_size=self.settings.page_size,
                connector=self.connector_factory(network),
            )
        except Exception:  # recorded on the account by capture_account; keep supervising
            logger.exception("connectors.stream.poll_failed", extra={"account_id": self.account_id})
            return
        self.stats.ingested += outcome.ingested
        self.stats.duplicates += outcome.duplicates
        if self.status == StreamState.POLLING:
            self._set_status(StreamState.POLLING, outcome.error)  # heartbeat of the fallback

    def _stream_once(self) -> Iterator[ActivityPage]:
        """One subscription, from the stored cursor, until it fails, the stop event is set,
        or another capture advanced the cursor (then the caller reconnects from it). Yields
        each page handled, so the caller knows the stream produced something."""
        from vetline.accounts.models import SocialAccount
        from vetline.connectors.actions import (
            CaptureOutcome,
            _tokens_for,
            archive_page,
            refresh_tokens,
        )
        from vetline.connectors.models import CaptureState, Connection

        account = SocialAccount.objects.get(pk=self.account_id)
        conn = Connection.objects.select_related("account").get(account=account)
        connector = self.connector_factory(account.network)
        tokens = _tokens_for(conn)
        if tokens.expired(timezone.now()) and tokens.refresh_token:
            tokens = refresh_tokens(connection_id=conn.pk, connector=connector)
        state, _ = CaptureState.objects.get_or_create(account=account)
        outcome = CaptureOutcome(account_id=self.account_id, status="captured")
        self.stats.connects += 1
        pages = connector.stream(
            tokens=tokens,
            handle=account.handle,
            cursor=state.cursor if state.has_cursor else None,
            limit=self.settings.page_size,
        )
        try:
            for page in pages:
                if self.stop_event.is_set():
                    return
                if self.status != StreamState.STREAMING:
                    self._set_status(StreamState.STREAMING)
                if not self._still_wanted_every(self.settings.heartbeat_seconds):
                    return  # disconnected meanwhile
                if page.cursor is None and not page.items:
                    self.stats.heartbeats += 1
                    self._alive(delivered=False)
                    yield page
                    continue
                before = (outcome.ingested, outcome.duplicates, outcome.quarantined)
                archived = archive_page(
                    account=account,
                    state_id=state.pk,
                    expected=state,
                    page=page,
                    outcome=outcome,
                    connector=connector,
                    tokens=tokens,
                )
                if archived is None:
                    self.stats.superseded += 1
                    logger.info(
                        "connectors.stream.superseded", extra={"account_id": self.account_id}
                    )
                    return
                state = archived
                self.stats.pages += 1
                self.stats.ingested += outcome.ingested - before[0]
                self.stats.duplicates += outcome.duplicates - before[1]
                self.stats.quarantined += outcome.quarantined - before[2]
                if outcome.ingested > before[0]:
                    self.stats.last_ingest_monotonic = time.monotonic()
                self._alive(delivered=bool(page.items))
                yield page
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()  # ends the subscription (the websocket thread stops)

    def _still_wanted_every(self, seconds: float) -> bool:
        now = time.monotonic()
        if now - self._last_wanted_check < seconds:
            return True
        self._last_wanted_check = now
        return self._wanted()


class StreamSupervisor:
    """Runs an :class:`AccountStream` thread for every streamable account (of this shard),
    starting new ones and letting go of disconnected ones every ``refresh_seconds``."""

    def __init__(
        self,
        *,
        settings: StreamSettings | None = None,
        shard: tuple[int, int] = (0, 1),
        connector_factory: Callable[[str], Connector] | None = None,
        account_ids: list[int] | None = None,
    ) -> None:
        from vetline.connectors.actions import get_connector

        index, count = shard
        if count < 1 or not 0 <= index < count:
            raise ValueError("shard must be INDEX/COUNT with 0 <= INDEX < COUNT")
        self.settings = settings or StreamSettings()
        self.shard = (index, count)
        self.connector_factory = connector_factory or get_connector
        self.only = set(account_ids) if account_ids is not None else None
        self.stop_event = threading.Event()
        self.streams: dict[int, tuple[AccountStream, threading.Thread]] = {}

    def wanted_ids(self) -> list[int]:
        from vetline.connectors.actions import streamable_account_ids

        index, count = self.shard
        return [
            i
            for i in streamable_account_ids()
            if i % count == index and (self.only is None or i in self.only)
        ]

    def refresh(self) -> None:
        wanted = set(self.wanted_ids())
        for account_id, (stream, thread) in list(self.streams.items()):
            if not thread.is_alive():
                del self.streams[account_id]
            elif account_id not in wanted:
                stream.stop_event.set()
        for account_id in sorted(wanted - set(self.streams)):
            stream = AccountStream(
                account_id,
                settings=self.settings,
                connector_factory=self.connector_factory,
                stop=threading.Event(),
            )
            thread = threading.Thread(
                target=stream.run, name=f"vetline-stream-{account_id}", daemon=True
            )
            self.streams[account_id] = (stream, thread)
            thread.start()

    def run(self) -> None:
        """Until :meth:`stop`: keep a stream per wanted account; then stop them all."""
        logger.info("connectors.stream.start", extra={"shard": f"{self.shard[0]}/{self.shard[1]}"})
        try:
            while not self.stop_event.is_set():
                _recycle_connection()
                try:
                    self.refresh()
                except Exception:
                    logger.exception("connectors.stream.refresh_failed")
                self.stop_event.wait(self.settings.refresh_seconds)
        finally:
            self.shutdown()
            _recycle_connection(close=True)

    def stop(self) -> None:
        self.stop_event.set()

    def shutdown(self, timeout_seconds: float = 15.0) -> None:
        for stream, _ in self.streams.values():
            stream.stop_event.set()
        deadline = time.monotonic() + timeout_seconds
        for _, thread in self.streams.values():
            thread.join(max(0.1, deadline - time.monotonic()))
        logger.info("connectors.stream.stopped", extra={"accounts": len(self.streams)})
