"""LinkedIn's REST API through its official Python client (``linkedin-api-client``).

``RestliClient`` builds the Rest.li requests (URN encoding, query tunnelling, the
``X-Restli-Protocol-Version: 2.0.0`` and ``LinkedIn-Version`` headers) and ``AuthClient`` the
OAuth ones; the framework's retry helper drives them. The raw HTTP answer (status, headers,
bytes) is taken from the client's ``requests`` session with a response hook, since the client's
formatters parse the body and keep no bytes.

Errors, from LinkedIn's "Error Handling" and rate limit guides:

* 429: rate limited. ``Retry-After`` when sent; otherwise LinkedIn's quotas are daily and reset
  at midnight UTC, so the wait is until then (the scheduler defers the account).
* 401: ``REVOKED_ACCESS_TOKEN`` (serviceErrorCode 65601, "revoked by the user") is a revoked
  grant; every other 401 (``EXPIRED_ACCESS_TOKEN`` 65602, ``INVALID_ACCESS_TOKEN`` 65600) an
  expired one, which a refresh token (where the app has them) may fix.
* 404: the object does not exist (deleted); 5xx: transient.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable, Mapping
from typing import Any, Final

import requests
from linkedin_api.clients.auth.client import AuthClient
from linkedin_api.clients.restli.client import RestliClient
from requests import PreparedRequest
from requests.adapters import HTTPAdapter

from vetline.connectors.base import AuthExpired, AuthRevoked, ConnectorError, RateLimited
from vetline.connectors.http import (
    Clock,
    HttpClient,
    LibraryCall,
    Request,
    Response,
    RetryPolicy,
    error_for,
    not_repeated,
    redact,
    register_secret,
    retry_after_seconds,
)
from vetline.connectors.polling import ObjectGone

#: The LinkedIn-Version every versioned call sends (configurable: ``linkedin_version``).
#: LinkedIn supports a version for at least a year, then refuses it (HTTP 426).
LINKEDIN_VERSION: Final = "202610"
REVOKED_CODES: Final = frozenset({"REVOKED_ACCESS_TOKEN"})
REVOKED_SERVICE_CODES: Final = frozenset({65601})


def _body(response: Response) -> dict[str, Any]:
    try:
        data = json.loads(response.body.decode("utf-8", "replace"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def seconds_to_utc_midnight(now: float) -> float:
    current = dt.datetime.fromtimestamp(now, dt.UTC)
    midnight = (current + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (midnight - current).total_seconds())


def classify(response: Response, now: float) -> ConnectorError | None:
    status = response.status
    if status < 400:
        return None
    body = _body(response)
    message = redact(str(body.get("message") or body.get("error_description") or "")[:200])
    if status == 429:
        wait = retry_after_seconds(response, now)
        return RateLimited(
            "LinkedIn rate limit (HTTP 429)",
            retry_after=seconds_to_utc_midnight(now) if wait is None else wait,
        )
    if status == 401:
        code = body.get("code")
        service = body.get("serviceErrorCode")
        if (
            code in REVOKED_CODES
            or service in REVOKED_SERVICE_CODES
            or "revoked" in message.lower()
        ):
            return AuthRevoked(f"LinkedIn: access was revoked ({message})")
        return AuthExpired(f"LinkedIn: the access token is no longer valid ({message})")
    if status == 404:
        return ObjectGone(f"LinkedIn: not found ({message})", answer=response.body)
    error = error_for(response, now)
    if error is not None and message and status < 500:
        error.message = f"{error.message}: {message}"
        error.args = (error.message,)
    return error


class _TimeoutAdapter(HTTPAdapter):
    """The LinkedIn client sends without a timeout; every request gets one here. It also
    keeps each answer (the client sends prepared requests, which skip session hooks)."""

    def __init__(self, timeout: float, capture: Callable[[Any], Any]) -> None:
        super().__init__()
        self.timeout = timeout
        self.capture = capture

    def send(  # type: ignore[override]
        self, request: PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        if not kwargs.get("timeout"):
            kwargs["timeout"] = self.timeout
        response = super().send(request, **kwargs)
        self.capture(response)
        return response


class LinkedInApi:
    """LinkedIn calls with one access token (or none, for the OAuth token endpoint)."""

    def __init__(
        self,
        *,
        access_token: str = "",
        version: str = LINKEDIN_VERSION,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        register_secret(access_token)
        self.access_token = access_token
        self.version = version
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        self.restli = RestliClient()
        self._captured: list[Any] = []
        self._prepare(self.restli.session)

    def _prepare(self, session: Any) -> None:
        adapter = _TimeoutAdapter(self.policy.timeout_seconds, self._capture)
        session.mount("https://", adapter)
        session.mount("http://", adapter)

    def _capture(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self._captured.append(response)
        return response

    def send(self, label: str, call: Callable[[], Any], *, idempotent: bool = True) -> Response:
        client = HttpClient(
            transport=LibraryCall(call, self._captured, idempotent=idempotent),
            clock=self.clock,
            policy=self.policy,
            rng=self.rng,
            classify=classify if idempotent else not_repeated(classify),
        )
        method, _, path = label.partition(" ")
        return client.send(
            Request(method, f"https://api.linkedin.com{path}"), secrets=(self.access_token,)
        )

    # Rest.li methods (versioned unless said otherwise)
    def get(
        self,
        path: str,
        *,
        keys: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        versioned: bool = True,
    ) -> Response:
        return self.send(
            f"GET {path}",
            lambda: self.restli.get(
                resource_path=path,
                path_keys=dict(keys) if keys else None,
                query_params=dict(query) if query else None,
                access_token=self.access_token,
                version_string=self.version if versioned else None,
            ),
        )

    def finder(self, path: str, name: str, *, query: Mapping[str, Any]) -> Response:
        return self.send(
            f"GET {path}?q={name}",
            lambda: self.restli.finder(
                resource_path=path,
                finder_name=name,
                query_params=dict(query),
                access_token=self.access_token,
                version_string=self.version,
            ),
        )

    def get_all(self, path: str, *, keys: Mapping[str, Any], query: Mapping[str, Any]) -> Response:
        return self.send(
            f"GET {path}",
            lambda: self.restli.get_all(
                resource_path=path,
                path_keys=dict(keys),
                query_params=dict(query),
                access_token=self.access_token,
                version_string=self.version,
            ),
        )

    def create(
        self, path: str, entity: Mapping[str, Any], *, keys: Mapping[str, Any] | None = None
    ) -> Response:
        return self.send(
            f"POST {path}",
            lambda: self.restli.create(
                resource_path=path,
                path_keys=dict(keys) if keys else None,
                entity=dict(entity),
                access_token=self.access_token,
                version_string=self.version,
            ),
            idempotent=False,
        )

    def action(self, path: str, name: str, params: Mapping[str, Any]) -> Response:
        return self.send(
            f"POST {path}?action={name}",
            lambda: self.restli.action(
                resource_path=path,
                action_name=name,
                action_params=dict(params),
                access_token=self.access_token,
                version_string=self.version,
            ),
        )

    def delete(
        self,
        path: str,
        *,
        keys: Mapping[str, Any],
        query: Mapping[str, Any] | None = None,
    ) -> Response:
        return self.send(
            f"DELETE {path}",
            lambda: self.restli.delete(
                resource_path=path,
                path_keys=dict(keys),
                query_params=dict(query) if query else None,
                access_token=self.access_token,
                version_string=self.version,
            ),
        )

    def upload(self, url: str, content: bytes, mime_type: str) -> Response:
        """PUT the bytes of an image to the upload URL LinkedIn handed out."""
        headers = {"Authorization": f"Bearer {self.access_token}", "Content-Type": mime_type}
        return self.send(
            "PUT /dms-uploads",
            lambda: self.restli.session.put(url, data=content, headers=headers),
            idempotent=True,  # the same bytes to the same image URN: repeating is harmless
        )

    # OAuth
    def auth_client(self, *, client_id: str, client_secret: str, redirect_uri: str) -> Any:
        register_secret(client_secret)
        auth = AuthClient(
            client_id=client_id, client_secret=client_secret, redirect_url=redirect_uri
        )
        self._prepare(auth.session)
        return auth
