"""The framework's side of captured media: the size-limited download helper against a real
local HTTP server, and the capture path's failure policy (a medium that cannot be had is
reported, not blocking; a long rate limit defers the page; no connector: reported) with a
sandbox connector whose posts carry media served by that server."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import requests

from vetline.archive.models import ArchivedRecord
from vetline.audit.models import AuditEvent
from vetline.connectors import actions
from vetline.connectors.base import (
    ActivityPage,
    AuthExpired,
    MediaRef,
    MediaTooLarge,
    PermanentError,
    RateLimited,
    TokenSet,
)
from vetline.connectors.media import avatar_media, download, with_media
from vetline.connectors.models import Alert, CaptureState
from vetline.connectors.sandbox import network as sandbox
from vetline.connectors.sandbox.connector import SandboxConnector
from vetline.connectors.sandbox.models import SandboxAccount
from vetline.connectors.tests.fakes import FakeClock

BODY = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8  # 2,056 bytes


class _Server(BaseHTTPRequestHandler):
    """/ok: the image; /chunked: the image without a length; /big: a declared 10 MB that is
    never sent; /flaky: 503 once, then the image; /status/<n>: that status;
    /limited: 429 asking for an hour."""

    flaky_left: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        path = self.path
        if path == "/ok":
            self._send(200, BODY, length=True)
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(BODY), 500):
                part = BODY[start : start + 500]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", str(10_000_000))
            self.end_headers()
            self.wfile.write(BODY)  # the client must stop before reading the rest
        elif path.startswith("/flaky"):
            left = self.flaky_left.get(path, 1)
            self.flaky_left[path] = left - 1
            self._send(503 if left > 0 else 200, b"" if left > 0 else BODY, length=True)
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"no", length=True)
        elif path == "/limited":
            self.send_response(429)
            self.send_header("Retry-After", "3600")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._send(404, b"", length=True)

    def _send(self, status: int, body: bytes, *, length: bool) -> None:
        self.send_response(status)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def get(url: str, max_bytes: int = 10_000, clock: FakeClock | None = None) -> bytes:
    return download(session=requests.Session(), url=url, max_bytes=max_bytes, clock=clock)


# --- The download helper -----------------------------------------------------------------------


def test_download_whole_and_chunked(server: str) -> None:
    assert get(f"{server}/ok") == BODY
    assert get(f"{server}/chunked") == BODY


def test_download_stops_at_the_limit(server: str) -> None:
    with pytest.raises(MediaTooLarge, match="10,000,000") as declared:
        get(f"{server}/big")
    assert declared.value.size_bytes == 10_000_000
    with pytest.raises(MediaTooLarge, match="over the 1,000-byte limit"):
        get(f"{server}/chunked", max_bytes=1000)  # no length announced: stopped while reading
    with pytest.raises(MediaTooLarge):
        get(f"{server}/ok", max_bytes=len(BODY) - 1)
    assert get(f"{server}/ok", max_bytes=len(BODY)) == BODY


def test_download_refusals(server: str) -> None:
    with pytest.raises(PermanentError, match="HTTP 404") as gone:
        get(f"{server}/status/404")
    assert not isinstance(gone.value, AuthExpired)
    # A media server's 401 says nothing about the account's token.
    with pytest.raises(PermanentError, match="HTTP 401") as refused:
        get(f"{server}/status/401")
    assert not isinstance(refused.value, AuthExpired)
    with pytest.raises(PermanentError, match="not an http"):
        get("file:///etc/passwd")


def test_download_retries_transient_failures_on_the_clock(server: str) -> None:
    clock = FakeClock()
    assert get(f"{server}/flaky-a", clock=clock) == BODY
    assert len(clock.sleeps) == 1
    clock = FakeClock()
    with pytest.raises(RateLimited):  # an hour is longer than the helper may wait inline
        get(f"{server}/limited", clock=clock)
    assert clock.sleeps == []


# --- The capture path --------------------------------------------------------------------------


class MediaSandbox(SandboxConnector):
    """The sandbox, with each post showing the media at ``paths`` of the test server."""

    base: ClassVar[str] = ""
    paths: ClassVar[list[str]] = []

    def fetch_activity(
        self, *, tokens: TokenSet, handle: str, cursor: str | None, limit: int = 100
    ) -> ActivityPage:
        page = super().fetch_activity(tokens=tokens, handle=handle, cursor=cursor, limit=limit)
        items = [
            with_media(dict(i), [MediaRef(ref=self.base + p) for p in self.paths])
            if isinstance(i, dict)
            else i
            for i in page.items
        ]
        return ActivityPage(items=items, cursor=page.cursor, more=page.more)

    def fetch_media(self, *, tokens: TokenSet, media: MediaRef, max_bytes: int) -> bytes:
        if media.ref.endswith("/boom"):
            raise ValueError("a library bug")
        return download(
            session=requests.Session(), url=media.ref, max_bytes=max_bytes, clock=FakeClock()
        )


@pytest.fixture
def blob_dir(settings: Any, tmp_path: Any) -> Any:
    settings.VETLINE_BLOB_BACKEND = "local"
    settings.VETLINE_BLOB_DIR = str(tmp_path / "blobs")
    return tmp_path / "blobs"


def _post(account: Any, text: str) -> None:
    timeline = SandboxAccount.objects.get(handle=account.handle)
    sandbox.create_post(timeline=timeline, author=timeline, text=text)


@pytest.mark.django_db
def test_capture_keeps_media_and_reports_the_rest(
    world: Any, connected: Any, server: str, blob_dir: Any
) -> None:
    _post(connected, "hello with media")
    MediaSandbox.base = server
    MediaSandbox.paths = ["/ok", "/status/404", "/boom", "/ok"]

    outcome = actions.capture_account(account_id=connected.pk, connector=MediaSandbox())
    assert (outcome.status, outcome.ingested, outcome.media_missing) == ("captured", 1, 2)

    record = ArchivedRecord.objects.get(account=connected)
    assert record.attachments == [hashlib.sha256(BODY).hexdigest()]  # the same bytes: once
    reasons = sorted(
        e.after["reason"]
        for e in AuditEvent.objects.filter(action="capture.media.missing")
        if e.after is not None
    )
    assert reasons == ["internal error: ValueError", "request refused (HTTP 404)"]
    alert = Alert.objects.get(account=connected, code__startswith="media_missing:")
    assert alert.severity == "warning" and f"{server}/status/404" in alert.body
    assert alert.deliveries.count() >= 1  # the owner and the compliance officers


@pytest.mark.django_db
def test_long_rate_limit_on_media_defers_the_page(
    world: Any, connected: Any, server: str, blob_dir: Any
) -> None:
    _post(connected, "rate limited media")
    MediaSandbox.base = server
    MediaSandbox.paths = ["/limited"]

    outcome = actions.capture_account(account_id=connected.pk, connector=MediaSandbox())
    assert outcome.status == "deferred"
    assert not ArchivedRecord.objects.filter(account=connected).exists()
    state = CaptureState.objects.get(account=connected)
    assert not state.has_cursor and state.retry_not_before is not None  # fetched again later
    assert not AuditEvent.objects.filter(action="capture.media.missing").exists()


@pytest.mark.django_db
def test_archive_page_without_a_connector_reports_announced_media(
    world: Any, connected: Any, blob_dir: Any
) -> None:
    state, _ = CaptureState.objects.get_or_create(account=connected)
    item = with_media(
        {"remote_id": "m1", "kind": "post", "direction": "outbound", "text": "x"},
        [MediaRef(ref="https://cdn.example/a.png")],
    )
    outcome = actions.CaptureOutcome(account_id=connected.pk, status="captured")
    archived = actions.archive_page(
        account=connected,
        state_id=state.pk,
        expected=state,
        page=ActivityPage(items=[item], cursor="1"),
        outcome=outcome,
    )
    assert archived is not None and archived.cursor == "1"
    assert ArchivedRecord.objects.get(account=connected, remote_id="m1").attachments == []
    event = AuditEvent.objects.get(action="capture.media.missing")
    assert event.after is not None and event.after["url"] == "https://cdn.example/a.png"
    assert "no connector session" in event.after["reason"]


def test_avatar_media_is_the_avatar_or_nothing() -> None:
    """A profile snapshot announces its avatar only; no URL, or the network's placeholder for an
    account without a picture, announces nothing (its attachments stay [])."""
    assert [m.ref for m in avatar_media(" https://cdn.example/a.png ")] == [
        "https://cdn.example/a.png"
    ]
    assert avatar_media("") == avatar_media(None) == avatar_media({"url": "x"}) == []
    assert avatar_media("https://mastodon.example/avatars/original/missing.png") == []
    placeholder = "https://abs.twimg.com/sticky/default_profile_images/default_profile_normal.png"
    assert avatar_media(placeholder) == []
