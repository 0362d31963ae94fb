"""The HTTP helper every connector shares: rate limits, retries and token-safe logging.

Plain Python (no ORM, no Django). A connector builds requests, the client sends them through a
:class:`Transport` (urllib by default; tests pass a fake) and turns answers into the typed
errors of :mod:`vetline.connectors.base`:

* **429** (and 503 with ``Retry-After``): wait what the network asks (``Retry-After`` in
  seconds or as an HTTP date, or the reset headers ``x-rate-limit-reset`` (epoch seconds, X),
  ``x-ratelimit-reset`` (ISO 8601 or epoch, Mastodon), ``ratelimit-reset`` (seconds, IETF
  draft)), then retry; beyond ``max_retry_after`` the wait is not ours to take, so
  :class:`RateLimited` is raised with the time to wait and the scheduler tries later.
* **5xx, 408, timeouts, reset connections**: exponential backoff with jitter, then retry.
* **401**: :class:`AuthExpired`; **403**, other 4xx: :class:`PermanentError`. Connectors that
  can tell a revoked grant from an expired token map it to :class:`AuthRevoked` themselves.

Waiting goes through a :class:`Clock`, so tests use a fake one and never sleep.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from vetline.connectors.base import (
    AuthExpired,
    Connector,
    ConnectorError,
    PermanentError,
    RateLimited,
    TransientError,
)

logger = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return float(time.time())

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 120.0
    #: the longest wait a rate limit may impose inline; longer ones are raised to the caller
    max_retry_after_seconds: float = 300.0
    timeout_seconds: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before retry number ``attempt`` (1-based): exponential, capped, with "equal
        jitter" (half fixed, half random) so that many workers do not retry in step."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2.0 ** (attempt - 1))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


@dataclass(slots=True)
class Request:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    body: bytes | None = field(default=None, repr=False)


@dataclass(slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes = field(default=b"", repr=False)

    def header(self, name: str) -> str | None:
        lower = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lower:
                return value
        return None


class Transport(Protocol):
    def send(self, request: Request, *, timeout: float) -> Response:
        """Send one request. Network failures raise OSError (TimeoutError included)."""


class UrllibTransport:
    """The standard library's HTTP client: no extra dependency for the shared helper."""

    def send(self, request: Request, *, timeout: float) -> Response:
        req = urllib.request.Request(  # noqa: S310  (connectors build https URLs)
            request.url, data=request.body, headers=request.headers, method=request.method
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                return Response(resp.status, dict(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, dict(exc.headers.items()), exc.read())


def _parse_reset(value: str, now: float) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return max(0.0, when.timestamp() - now)
    # An epoch timestamp (X, Mastodon) or a delta in seconds (IETF RateLimit-Reset).
    return max(0.0, number - now) if number > 1_000_000_000 else max(0.0, number)


def retry_after_seconds(response: Response, now: float) -> float | None:
    """How long the network asks us to wait, from ``Retry-After`` or a reset header."""
    raw = response.header("Retry-After")
    if raw:
        raw = raw.strip()
        if raw.isdigit():
            return float(raw)
        try:
            parsed = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return max(0.0, parsed.timestamp() - now)
    for name in ("x-rate-limit-reset", "x-ratelimit-reset", "ratelimit-reset"):
        value = response.header(name)
        if value:
            seconds = _parse_reset(value, now)
            if seconds is not None:
                return seconds
    return None


def error_for(response: Response, now: float) -> ConnectorError | None:
    """The typed error an HTTP answer means, or None for a success."""
    status = response.status
    if status < 400:
        return None
    wait = retry_after_seconds(response, now)
    if status == 429:
        return RateLimited("rate limited (HTTP 429)", retry_after=60.0 if wait is None else wait)
    if status == 503 and wait is not None:
        return RateLimited("service unavailable (HTTP 503)", retry_after=wait)
    if status >= 500 or status == 408:
        return TransientError(f"server error (HTTP {status})")
    if status == 401:
        return AuthExpired("the network refused the access token (HTTP 401)")
    return PermanentError(f"request refused (HTTP {status})")


class HttpClient:
    """Send requests with rate-limit handling and retries. One per connector instance."""

    def __init__(
        self,
        *,
        transport: Transport | None = None,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        classify: Callable[[Response, float], ConnectorError | None] = error_for,
    ) -> None:
        self.transport = transport or UrllibTransport()
        self.clock = clock or SystemClock()
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        #: features this instance's calls found unavailable on the network: feature -> reason
        self.capability_report: dict[str, str] = {}
        self.classify = classify

    def send(self, request: Request, *, secrets: Iterable[str] = ()) -> Response:
        """Send ``request``, retrying as described in the module docstring. ``secrets`` (the
        tokens in the request) are registered for redaction before anything is logged."""
        for secret in secrets:
            register_secret(secret)
        for value in request.headers.values():
            _register_authorization(value)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.transport.send(request, timeout=self.policy.timeout_seconds)
            except OSError as exc:
                error: ConnectorError | None = TransientError(
                    f"network error: {type(exc).__name__}"
                )
            else:
                error = self.classify(response, self.clock.now())
                if error is None:
                    return response
            assert error is not None
            if attempt >= self.policy.max_attempts:
                raise error
            if isinstance(error, RateLimited):
                if error.retry_after > self.policy.max_retry_after_seconds:
                    raise error
                delay = error.retry_after + self.rng.uniform(0, 1)
            elif isinstance(error, TransientError):
                delay = self.policy.backoff(attempt, self.rng)
            else:
                raise error
            logger.warning(
                "connector.http.retry",
                extra={
                    "method": request.method,
                    "url": redact(request.url),
                    "attempt": attempt,
                    "delay_seconds": round(delay, 3),
                    "reason": error.message,
                },
            )
            self.clock.sleep(delay)


# --- Token redaction ---------------------------------------------------------------------------

REDACTED = "[REDACTED]"
_known_secrets: set[str] = set()
_known_lock = threading.Lock()
_MIN_SECRET = 8
_PATTERNS = (
    # Authorization: Bearer xyz / Basic xyz
    re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9\-._~+/=:]{6,}"),
    # access_token=…, refresh_token=…, client_secret=…, code=…, password=… in URLs and forms
    re.compile(
        r"(?i)\b(access_token|refresh_token|id_token|client_secret|code_verifier|code|password|"
        r"app_password|api_key|secret|oauth_token|oauth_token_secret)=[^&\s\"']+"
    ),
    # "access_token": "…" in JSON
    re.compile(
        r"(?i)([\"'](?:access_token|refresh_token|id_token|client_secret|accessJwt|refreshJwt|"
        r"password|api_key|secret)[\"']\s*:\s*)[\"'][^\"']*[\"']"
    ),
)


def register_secret(secret: str) -> None:
    """Remember a secret so that any log line containing it is redacted, whatever its form."""
    if secret and len(secret) >= _MIN_SECRET:
        with _known_lock:
            _known_secrets.add(secret)


def _register_authorization(value: str) -> None:
    parts = value.split(None, 1)
    if len(parts) == 2 and parts[0].lower() in {"bearer", "token", "basic"}:
        register_secret(parts[1])


def _replace(match: re.Match[str]) -> str:
    text = match.group(0)
    if match.re is _PATTERNS[0]:
        return f"{match.group(1)} {REDACTED}"
    if match.re is _PATTERNS[1]:
        return f"{match.group(1)}={REDACTED}"
    return f'{match.group(1)}"{REDACTED}"' if text else text


def redact(text: str) -> str:
    """``text`` with every known secret and every token-shaped parameter replaced."""
    with _known_lock:
        known = sorted(_known_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(_replace, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v) for v in value)
    return value


_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class TokenRedactingFilter(logging.Filter):
    """A logging filter that removes tokens from the message, its arguments, structured
    ``extra`` fields and the traceback. Installed on Vetline's log handlers (settings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS:
                record.__dict__[key] = _redact_value(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


#: how long a feature found missing on a network is not asked for again
RECHECK_UNAVAILABLE_SECONDS: Final = 86_400

#: stands for "the connection failed mid-request" on a request that must not be repeated
UNCERTAIN_STATUS: Final = 599


class PublishUncertain(PermanentError):
    """Publishing failed in a way that leaves unknown whether the network acted: it is not
    retried automatically (that could publish twice); check the account before trying again."""

    def __init__(self, message: str) -> None:
        super().__init__(f"{message}; it may or may not have been published, not retried")


def not_repeated(
    classify_fn: Callable[[Response, float], ConnectorError | None],
) -> Callable[[Response, float], ConnectorError | None]:
    """For requests that create something (publishing): a failure that may have happened after
    the network acted is not retried, since retrying could publish twice. Rate limits, which
    the network answers before acting, are still waited out and retried."""

    def classify_once(response: Response, now: float) -> ConnectorError | None:
        if response.status == UNCERTAIN_STATUS:
            return PublishUncertain("the connection failed while publishing")
        error = classify_fn(response, now)
        if isinstance(error, TransientError):
            return PublishUncertain(error.message)
        return error

    return classify_once


class LibraryCall:
    """A :class:`Transport` that runs one call of a network's client library (Meta's SDK,
    LinkedIn's client…) and hands over the HTTP answer it got, captured by a response hook on
    the library's ``requests`` session: the library builds and sends the request, this helper
    decides on retries and errors. ``idempotent`` False: a connection failure is answered
    with :data:`UNCERTAIN_STATUS` instead of being retried (see :func:`not_repeated`)."""

    def __init__(
        self, call: Callable[[], Any], captured: list[Any], *, idempotent: bool = True
    ) -> None:
        self.call = call
        self.captured = captured
        self.idempotent = idempotent

    def send(self, request: Request, *, timeout: float) -> Response:
        self.captured.clear()
        try:
            self.call()
        except OSError:  # requests' errors are OSErrors: the retry helper retries them
            if not self.idempotent:
                return Response(UNCERTAIN_STATUS, {}, b"")
            raise
        except Exception:
            # Libraries raise on error answers (or fail to format them); the answer itself was
            # captured and is classified by the framework. No answer at all is not ours to hide.
            if not self.captured:
                raise
        raw = self.captured[-1]
        return Response(raw.status_code, dict(raw.headers.items()), bytes(raw.content))


class RetryingConnector(Connector):
    """A connector whose requests go through :class:`HttpClient`: it holds the clock, the retry
    policy and the random source the helper uses, which tests replace (a fake clock that never
    sleeps, a seeded random)."""

    def __init__(
        self,
        *,
        config: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(config=config)
        self.clock: Clock = clock or SystemClock()
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        #: features this instance's calls found unavailable on the network: feature -> reason
        self.capability_report: dict[str, str] = {}

    def mark_unavailable(
        self, unavailable: dict[str, Any] | None, feature: str, reason: str
    ) -> None:
        """Record that the network lacks ``feature`` (an endpoint answered 404/501, the access
        tier refuses it): in this instance's capability report and, given the connection's
        stored ``unavailable`` map (kept in its cursor), for the next captures too."""
        self.capability_report[feature] = reason
        if unavailable is not None:
            unavailable[feature] = {"reason": reason, "checked_at": int(self.clock.now())}
        logger.info(
            "connectors.feature.unavailable",
            extra={"network": self.network, "feature": feature, "reason": reason},
        )

    def known_unavailable(self, unavailable: dict[str, Any], feature: str) -> bool:
        """Whether ``feature`` was found missing within the last day (after that it is tried
        again, in case the server was upgraded or the access tier changed)."""
        entry = unavailable.get(feature)
        if not isinstance(entry, dict):
            return False
        checked = entry.get("checked_at")
        if isinstance(checked, int) and self.clock.now() - checked > RECHECK_UNAVAILABLE_SECONDS:
            unavailable.pop(feature, None)
            return False
        self.capability_report[feature] = str(entry.get("reason") or "unavailable")
        return True
