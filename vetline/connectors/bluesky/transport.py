"""The SDK's HTTP layer routed through Vetline's shared helper (:mod:`vetline.connectors.http`),
so Bluesky requests get the same rate-limit handling (``ratelimit-reset``, ``Retry-After``,
429), backoff on transient errors and token redaction as every connector. Answers that are not
worth retrying go back to the SDK unchanged, which raises its own typed errors; the connector
turns those into the framework's errors in one place (:func:`connector_error`)."""

from __future__ import annotations

from typing import Any

import httpx
from atproto_client import exceptions as sdk_errors  # type: ignore[import-untyped]
from atproto_client.models.common import XrpcError  # type: ignore[import-untyped]
from atproto_client.request import Request as SdkRequest  # type: ignore[import-untyped]
from atproto_client.request import RequestBase, _handle_response

from vetline.connectors.base import (
    AuthExpired,
    AuthRevoked,
    ConnectorError,
    PermanentError,
    RateLimited,
    TransientError,
)
from vetline.connectors.http import HttpClient, Request, Response, error_for

#: XRPC error names meaning the session is over for good (reconnect) or only expired (refresh)
_REVOKED_ERRORS = frozenset(
    {"InvalidToken", "AccountTakedown", "AccountDeactivated", "AuthenticationRequired"}
)
_EXPIRED_ERRORS = frozenset({"ExpiredToken"})


def retryable_only(response: Response, now: float) -> ConnectorError | None:
    """Classify for the helper: only rate limits and transient failures are its business."""
    error = error_for(response, now)
    return error if isinstance(error, RateLimited | TransientError) else None


_BUILDER: httpx.Client | None = None


def _builder() -> httpx.Client:
    """One httpx client, only to *build* requests (never to send them). The SDK makes an
    ``httpx.Client`` per request object, which loads the CA bundle into a new SSL context each
    time (tens of milliseconds, for every SDK client the connector creates); ours sends
    through :class:`HttpClient`, so one shared builder is enough."""
    global _BUILDER
    if _BUILDER is None:
        _BUILDER = httpx.Client(follow_redirects=True)
    return _BUILDER


class RetryingRequest(SdkRequest):
    """An ``atproto`` request object whose requests go through :class:`HttpClient`."""

    def __init__(self, http: HttpClient) -> None:
        RequestBase.__init__(self)  # the headers of this client's session, and no httpx.Client
        self._client_kwargs: dict[str, Any] = {}
        self._client = _builder()
        self._http = http

    def close(self) -> None:
        """Nothing to close: the builder is shared and sends nothing."""

    def _new_instance(self) -> RetryingRequest:
        return type(self)(self._http)

    def _send_request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = self.get_headers(kwargs.pop("headers", None))
        # The shared helper hands back the body as sent: ask for it uncompressed.
        headers["Accept-Encoding"] = "identity"
        if isinstance(kwargs.get("data"), bytes):  # blob uploads: raw bytes are content
            kwargs["content"] = kwargs.pop("data")
        built = self._client.build_request(method=method, url=url, headers=headers, **kwargs)
        answer = self._http.send(
            Request(
                method=method, url=str(built.url), headers=dict(built.headers), body=built.read()
            )
        )
        response = httpx.Response(
            answer.status, headers=dict(answer.headers), content=answer.body, request=built
        )
        checked: httpx.Response = _handle_response(response)
        return checked


def _xrpc_error(exc: sdk_errors.RequestErrorBase) -> tuple[int, str, str]:
    if exc.response is None:
        return 0, "", ""
    content = exc.response.content
    if isinstance(content, XrpcError):
        return exc.response.status_code, content.error or "", content.message or ""
    return exc.response.status_code, "", ""


def connector_error(exc: Exception, *, doing: str) -> ConnectorError:
    """The framework's error for an ``atproto`` SDK failure. Messages carry the XRPC error
    name and message, never a token."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, sdk_errors.RequestErrorBase):
        status, name, message = _xrpc_error(exc)
        detail = f"{doing}: {name or 'HTTP ' + str(status)}" + (f" ({message})" if message else "")
        if name in _EXPIRED_ERRORS:
            return AuthExpired(detail)
        if name in _REVOKED_ERRORS:
            return AuthRevoked(detail)
        if isinstance(exc, sdk_errors.UnauthorizedError):
            return AuthExpired(detail) if status == 401 else AuthRevoked(detail)
        if isinstance(exc, sdk_errors.RateLimitExceededError):
            return RateLimited(detail, retry_after=exc.retry_after or 60.0)
        if isinstance(exc, sdk_errors.NetworkError) or status >= 500:
            return TransientError(detail)
        return PermanentError(detail)
    if isinstance(exc, sdk_errors.LoginRequiredError):
        return AuthExpired(f"{doing}: no session")
    if isinstance(exc, OSError | httpx.TransportError):
        return TransientError(f"{doing}: network error ({type(exc).__name__})")
    return PermanentError(f"{doing}: unexpected answer ({type(exc).__name__})")
