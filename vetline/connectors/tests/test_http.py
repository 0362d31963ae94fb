"""Retries, rate limits and token redaction of the shared HTTP helper (fake clock: no sleeps)."""

from __future__ import annotations

import email.utils
import io
import logging
import random

import pytest

from vetline.connectors.base import (
    AuthExpired,
    PermanentError,
    RateLimited,
    TransientError,
)
from vetline.connectors.http import (
    REDACTED,
    HttpClient,
    Request,
    Response,
    RetryPolicy,
    TokenRedactingFilter,
    redact,
    register_secret,
    retry_after_seconds,
)
from vetline.connectors.tests.fakes import FakeClock

NOW = FakeClock.start


class Scripted:
    """A transport answering from a script; an exception in the script is raised."""

    def __init__(self, *answers: Response | Exception) -> None:
        self.answers = list(answers)
        self.sent: list[Request] = []

    def send(self, request: Request, *, timeout: float) -> Response:
        self.sent.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client(
    *answers: Response | Exception, **policy: float
) -> tuple[HttpClient, FakeClock, Scripted]:
    clock, transport = FakeClock(), Scripted(*answers)
    return (
        HttpClient(
            transport=transport,
            clock=clock,
            policy=RetryPolicy(**policy),  # type: ignore[arg-type]
            rng=random.Random(1),
        ),
        clock,
        transport,
    )


OK = Response(200, {}, b"{}")


def test_retry_after_seconds_is_honoured() -> None:
    c, clock, transport = client(Response(429, {"Retry-After": "17"}), OK)
    assert c.send(Request("GET", "https://example.test/x")).status == 200
    assert len(transport.sent) == 2
    assert 17 <= clock.sleeps[0] < 18


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(NOW + 42, usegmt=True)
    c, clock, _ = client(Response(429, {"retry-after": when}), OK)
    c.send(Request("GET", "https://example.test/x"))
    assert 42 <= clock.sleeps[0] < 43


def test_x_rate_limit_reset_epoch_header() -> None:
    c, clock, _ = client(Response(429, {"x-rate-limit-reset": str(int(NOW + 90))}), OK)
    c.send(Request("GET", "https://example.test/x"))
    assert 90 <= clock.sleeps[0] < 91


def test_mastodon_iso_reset_and_ietf_delta() -> None:
    iso = Response(429, {"X-RateLimit-Reset": "2027-01-15T08:00:30Z"})
    assert retry_after_seconds(iso, 1800000000.0) is not None
    assert retry_after_seconds(Response(429, {"RateLimit-Reset": "12"}), NOW) == 12


def test_rate_limit_longer_than_policy_is_raised_with_wait() -> None:
    c, clock, _ = client(Response(429, {"Retry-After": "3600"}), max_retry_after_seconds=300)
    with pytest.raises(RateLimited) as info:
        c.send(Request("GET", "https://example.test/x"))
    assert info.value.retry_after == 3600
    assert clock.sleeps == []


def test_transient_errors_back_off_exponentially_with_jitter() -> None:
    c, clock, transport = client(
        Response(502, {}),
        TimeoutError("slow"),
        Response(500, {}),
        OK,
        base_delay_seconds=1.0,
        max_delay_seconds=60.0,
    )
    assert c.send(Request("GET", "https://example.test/x")).status == 200
    assert len(transport.sent) == 4
    for attempt, delay in enumerate(clock.sleeps, start=1):
        ceiling = 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling


def test_gives_up_after_max_attempts() -> None:
    c, _, transport = client(*[Response(503, {})] * 3, max_attempts=3)
    with pytest.raises(TransientError):
        c.send(Request("GET", "https://example.test/x"))
    assert len(transport.sent) == 3


@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthExpired), (403, PermanentError), (404, PermanentError)]
)
def test_client_errors_are_not_retried(status: int, error: type[Exception]) -> None:
    c, clock, transport = client(Response(status, {}))
    with pytest.raises(error):
        c.send(Request("GET", "https://example.test/x"))
    assert len(transport.sent) == 1 and clock.sleeps == []


# --- Token redaction ---------------------------------------------------------------------------


def _captured_logger() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TokenRedactingFilter())
    handler.setFormatter(logging.Formatter("%(message)s %(url)s %(reason)s"))
    log = logging.getLogger("vetline.connectors.tests.redaction")
    log.handlers = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    return log, stream


def test_tokens_never_reach_the_logs() -> None:
    secret = "ya29.A0ARrdaM-very-secret-token"
    register_secret(secret)
    log, stream = _captured_logger()
    log.warning(
        "calling %s with %s",
        f"https://api.test/x?access_token={secret}",
        {"Authorization": f"Bearer {secret}"},
        extra={"url": f"https://api.test/?token={secret}", "reason": f"bad {secret}"},
    )
    try:
        raise ValueError(f"refused token {secret}")
    except ValueError:
        log.exception("failed %s", "x", extra={"url": "", "reason": ""})
    output = stream.getvalue()
    assert secret not in output
    assert REDACTED in output


def test_token_shaped_values_are_redacted_without_registration() -> None:
    text = redact(
        'POST /oauth/token code=abc123xyz&client_secret=s3cr3tvalue {"refresh_token": "rt-1"} '
        "Authorization: Bearer eyJhbGciOi.payload.sig"
    )
    for leaked in ("abc123xyz", "s3cr3tvalue", "rt-1", "eyJhbGciOi.payload.sig"):
        assert leaked not in text


def test_retry_warning_does_not_log_the_token(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sbx_at_unique-token-for-retry-log"
    c, _, _ = client(Response(500, {}), OK)
    handler_filter = TokenRedactingFilter()
    with caplog.at_level(logging.WARNING, logger="vetline.connectors.http"):
        c.send(
            Request(
                "GET",
                f"https://api.test/x?access_token={secret}",
                headers={"Authorization": f"Bearer {secret}"},
            )
        )
    for rec in caplog.records:
        handler_filter.filter(rec)
        assert secret not in rec.getMessage() and secret not in str(rec.__dict__)


def test_features_found_missing_are_remembered_for_a_day() -> None:
    from vetline.connectors.http import RECHECK_UNAVAILABLE_SECONDS, RetryingConnector
    from vetline.connectors.sandbox.connector import SandboxConnector

    class Probing(RetryingConnector, SandboxConnector):
        pass

    clock = FakeClock()
    connector = Probing(clock=clock)
    stored: dict[str, object] = {}
    connector.mark_unavailable(stored, "edit_history", "GET …/history answered 404")
    assert connector.capability_report == {"edit_history": "GET …/history answered 404"}
    later = Probing(clock=clock)
    assert later.known_unavailable(stored, "edit_history")  # not asked again
    assert later.capability_report["edit_history"].endswith("404")
    clock.sleep(RECHECK_UNAVAILABLE_SECONDS + 1)
    assert not later.known_unavailable(stored, "edit_history")  # tried again after a day
    assert stored == {}
