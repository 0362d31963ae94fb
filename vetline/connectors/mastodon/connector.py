"""The Mastodon connector, on Mastodon.py, for Mastodon and Mastodon-compatible servers
(Pleroma/Akkoma, GoToSocial, Takahē).

Compatibility is by behaviour, never by version string: the client is built with
``version_check_mode="none"``, and an optional endpoint is tried and, when the server answers
404 or 501, recorded as unavailable in the connection's **capability report**
(:meth:`MastodonConnector.probe`, and ``unavailable`` in the stored cursor, so it is per
connection and survives restarts; it is re-tried after a day, in case the server was upgraded).

Each server is its own OAuth provider: an app is registered on an instance the first time one
of its accounts is connected (``POST /api/v1/apps``), or taken from the operator's settings
(``VETLINE_CONNECTORS["mastodon"]["apps"][host]``). Mastodon tokens do not expire; they can be
revoked, which the server reports as HTTP 401 ``{"error": "The access token was revoked"}``.

The capture cursor is a small JSON document: the newest own status and the newest mention
notification archived (``min_id`` paging, following the ``Link`` header), and the
``edited_at`` of recently seen edited statuses.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import logging
import queue
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs, urlsplit

import requests
from mastodon import Mastodon, StreamListener
from mastodon.errors import MastodonAPIError, MastodonError, MastodonNotFoundError

from vetline.connectors.base import (
    MEDIA_KEY,
    AccountRef,
    ActivityPage,
    AuthExpired,
    AuthRevoked,
    Capabilities,
    CapabilityReport,
    ConnectorError,
    MediaRef,
    PermanentError,
    Profile,
    PublishRequest,
    PublishResult,
    StreamUnavailable,
    TokenSet,
    Unsupported,
    report_from_scopes,
)
from vetline.connectors.http import (
    Response,
    RetryingConnector,
    error_for,
    redact,
    register_secret,
)
from vetline.connectors.mastodon.mapping import (
    VOLATILE_ACCOUNT_MEMBERS,
    edit_item,
    html_to_text,
    profile_snapshot,
    status_item,
)
from vetline.connectors.media import check_declared_size, download
from vetline.connectors.polling import deletion
from vetline.connectors.requests_session import (
    RawElement,
    RetryingSession,
    connector_error_in,
    loads_lenient,
    split_array,
    split_member_array,
)

logger = logging.getLogger(__name__)

NETWORK: Final = "mastodon"
PAGE_MAX: Final = 40  # Mastodon's maximum page size for statuses and notifications
EDITS_REMEMBERED: Final = 500
PENDING_SECONDS: Final = 1800
T = TypeVar("T")


class RemoteNotFound(PermanentError):
    """HTTP 404 (or 410): the record is gone, or the server has no such endpoint."""


class NotImplementedByServer(Unsupported):
    """HTTP 501, or a 404 on an endpoint the server does not have."""


def split_handle(handle: str, default_host: str = "") -> tuple[str, str]:
    """``@alice@example.social`` → (``alice``, ``example.social``)."""
    parts = handle.strip().lstrip("@").split("@")
    if len(parts) == 2 and parts[0] and parts[1]:
        return parts[0], parts[1].lower()
    if len(parts) == 1 and parts[0] and default_host:
        return parts[0], default_host.lower()
    raise PermanentError(
        f"{handle[:100]!r} is not a Mastodon handle: write it as @name@server.example"
    )


def _error_text(body: bytes) -> str:
    value = loads_lenient(body)
    if isinstance(value, dict) and isinstance(value.get("error"), str):
        return redact(value["error"][:200])
    return ""


def classify(response: Response, now: float) -> ConnectorError | None:
    """What the framework's helper should make of an answer. Only rate limits, transient
    failures and refused tokens are decided here; other 4xx and 501 are left to Mastodon.py,
    whose feature detection (a 404 on an optional endpoint) relies on seeing them."""
    status = response.status
    if status == 401:
        value = loads_lenient(response.body)
        said = value.get("error") if isinstance(value, dict) else None
        if isinstance(said, str) and "expired" in said.lower():
            return AuthExpired("the Mastodon server says the access token expired (HTTP 401)")
        reason = _error_text(response.body)
        # Mastodon tokens do not expire: any other refusal means the grant is gone.
        return AuthRevoked(f"the Mastodon server refused the access token: {reason or 'HTTP 401'}")
    if status == 501:
        return None
    if status in (408, 429) or status >= 500:
        return error_for(response, now)
    return None


@dataclass
class CursorState:
    statuses: str = ""
    mentions: str = ""
    edits: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: own statuses in the newest page at the last look (None: not looked yet), to find the
    #: ones deleted since
    recent: list[str] | None = None

    @classmethod
    def load(cls, cursor: str | None) -> CursorState:
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
        except ValueError:
            # A cursor from an older format (a bare status id) resumes the statuses stream.
            return cls(statuses=cursor)
        if not isinstance(data, dict):
            return cls()
        return cls(
            statuses=str(data.get("statuses") or ""),
            mentions=str(data.get("mentions") or ""),
            edits={str(k): str(v) for k, v in (data.get("edits") or {}).items()},
            unavailable=dict(data.get("unavailable") or {}),
            recent=[str(i) for i in data["recent"]]
            if isinstance(data.get("recent"), list)
            else None,
        )

    def dump(self) -> str:
        edits = dict(list(self.edits.items())[-EDITS_REMEMBERED:])
        return json.dumps(
            {
                "v": 1,
                "statuses": self.statuses,
                "mentions": self.mentions,
                "edits": edits,
                "unavailable": self.unavailable,
                "recent": self.recent,
            },
            sort_keys=True,
            separators=(",", ":"),
        )


def _id_key(value: str) -> tuple[int, str]:
    # Snowflakes (Mastodon), flake ids (Pleroma) and ULIDs (GoToSocial) all sort by length,
    # then lexically.
    return len(value), value


class MastodonConnector(RetryingConnector):
    network = NETWORK
    label = "Mastodon"
    default_scopes = ("read", "write")
    scope_requirements = {
        "publish_post": ("write:statuses",),
        "publish_reply": ("write:statuses",),
        "publish_media": ("write:media",),
        "delete": ("write:statuses",),
        "capture_own_posts": ("read:statuses",),
        "capture_replies": ("read:notifications",),
        "capture_mentions": ("read:notifications",),
        "capture_direct_messages": ("read:statuses", "read:notifications"),
        "capture_edits": ("read:statuses",),
        "capture_profile": ("read:accounts",),
        "search": ("read:search",),
    }
    capabilities = Capabilities(
        publish_post=True,
        publish_reply=True,
        publish_media=True,
        delete=True,
        capture_own_posts=True,
        capture_replies=True,
        capture_mentions=True,
        capture_direct_messages=True,
        capture_edits=True,
        capture_deletions=True,
        capture_profile=True,
        streaming=True,
        oauth2=True,
        token_refresh=False,
        search=True,
        notes=(
            "Works with Mastodon and compatible servers (Pleroma/Akkoma, GoToSocial, Takahē); "
            "endpoints a server lacks are recorded in the connection's capability report.",
            "Deletions of the account's own statuses are found by re-reading its newest page of "
            "statuses (40) at each capture and asking for those that disappeared; a deleted "
            "older status, or a deleted reply by someone else, is not seen (the streaming API, "
            "used to capture sooner, announces deletions by id only, without the status).",
            "Streaming: the user streaming API (server-sent events) wakes a capture from the "
            "cursor; it replays nothing, so the REST capture stays the record. Servers without "
            "it are polled.",
            "Replies by others are captured through mention notifications: a reply that "
            "removes the mention of the account is not notified and not captured.",
            "Edit history (GET /api/v1/statuses/:id/history) is missing on some servers; there "
            "only the latest version of an edited status is captured.",
            "Tokens do not expire and cannot be refreshed; a revoked token needs reconnecting.",
        ),
    )

    # --- Plumbing -------------------------------------------------------------------------------

    def _base_url(self, host: str) -> str:
        overrides = self.config.get("base_urls") or {}
        return str(overrides.get(host) or f"https://{host}")

    def _session(self) -> RetryingSession:
        return RetryingSession(
            classify=classify, clock=self.clock, policy=self.policy, rng=self.rng
        )

    def _api(
        self,
        host: str,
        access_token: str | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> tuple[Mastodon, RetryingSession]:
        if access_token:
            register_secret(access_token)
        session = self._session()
        api = Mastodon(
            client_id=client_id,
            client_secret=client_secret,
            access_token=access_token,
            api_base_url=self._base_url(host),
            # Never depend on version strings: compatible servers report Mastodon versions they
            # do not fully implement. Endpoints are tried, and a 404/501 is handled.
            version_check_mode="none",
            mastodon_version="4.0.0",
            ratelimit_method="throw",
            session=session,
            user_agent=str(self.config.get("user_agent") or "Vetline"),
        )
        # Mastodon.py picks some endpoint variants (v2 media) by version; start from the
        # current API and fall back on a 404 (see _media_post).
        api.mastodon_major, api.mastodon_minor, api.mastodon_patch = 4, 0, 0
        return api, session

    def _call(self, session: RetryingSession, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Call Mastodon.py, with its errors as the framework's."""
        session.last_response = None
        try:
            return fn(*args, **kw)
        except MastodonError as exc:
            raise self._error(exc) from None

    def _get(
        self, session: RetryingSession, fn: Callable[..., Any], *args: Any, **kw: Any
    ) -> requests.Response:
        """Call Mastodon.py for its HTTP answer: the exact bytes and headers. A body that the
        library cannot parse (truncated, malformed) is still returned, for the mapping to keep
        what is whole and quarantine the rest."""
        session.last_response = None
        try:
            fn(*args, **kw)
        except MastodonError as exc:
            if session.last_response is None:
                raise self._error(exc) from None
        assert session.last_response is not None
        return session.last_response

    @staticmethod
    def _error(exc: MastodonError) -> ConnectorError:
        found = connector_error_in(exc)
        if found is not None:
            return found
        status = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
        detail = exc.args[3] if len(exc.args) > 3 and isinstance(exc.args[3], str) else ""
        detail = redact(detail[:200])
        if isinstance(exc, MastodonNotFoundError) or status in (404, 410):
            return RemoteNotFound(f"not found on the server (HTTP {status or 404}) {detail}")
        if status == 501:
            return NotImplementedByServer("the server does not implement this (HTTP 501)")
        if isinstance(exc, MastodonAPIError) and status is not None:
            return PermanentError(f"the server refused the request (HTTP {status}) {detail}")
        return PermanentError(f"Mastodon request failed: {type(exc).__name__}")

    def _where(self, tokens: TokenSet, handle: str | None = None) -> tuple[str, str]:
        """(host, account id) of the connected account. The connection stores its remote
        account id as ``id@host``: publishing and deleting are given only the tokens."""
        account_id, _, host = tokens.remote_account_id.partition("@")
        handle = handle or tokens.remote_handle
        if handle:
            _, handle_host = split_handle(handle, str(self.config.get("default_host") or ""))
            host = host or handle_host
        if not host:
            host = str(self.config.get("default_host") or "")
        if not host:
            raise PermanentError("the connection does not say which Mastodon server it is on")
        return host, account_id

    # --- Media ---------------------------------------------------------------------------------

    def fetch_media(self, *, tokens: TokenSet, media: MediaRef, max_bytes: int) -> bytes:
        """A status's medium, with Mastodon.py's session (the framework's retrying session):
        the access token is sent only to the account's own server, never to a media CDN or a
        remote server."""
        check_declared_size(media, max_bytes)
        host, _ = self._where(tokens)
        _, session = self._api(host, tokens.access_token)
        headers = {"User-Agent": str(self.config.get("user_agent") or "Vetline")}
        if urlsplit(media.ref).netloc == urlsplit(self._base_url(host)).netloc:
            headers["Authorization"] = f"Bearer {tokens.access_token}"
        return download(
            session=session,
            url=media.ref,
            max_bytes=max_bytes,
            headers=headers,
            clock=self.clock,
            policy=self.policy,
            rng=self.rng,
        )

    # --- Capability report ------------------------------------------------------------------

    def probe(self, *, tokens: TokenSet, account: AccountRef | None = None) -> CapabilityReport:
        """What this connection's scopes and server allow, found by calling the server: the
        declared capabilities narrowed by the scopes granted, and by the optional endpoints the
        server lacks (edit history, search). The server's version string is reported for people
        to read, never used to decide."""
        host, _ = self._where(tokens, account.handle if account else None)
        api, session = self._api(host, tokens.access_token)
        server: dict[str, str] = {"host": host}
        allowed, missing = report_from_scopes(
            self.capabilities, self.scope_requirements, tokens.scopes
        )
        try:
            info = loads_lenient(self._get(session, api.instance_v1).content)
        except RemoteNotFound:
            info = None
            self.mark_unavailable(None, "instance_info", "GET /api/v1/instance answered 404")
        if isinstance(info, dict):
            server["version"] = str(info.get("version") or "")[:200]
            server["title"] = str(info.get("title") or "")[:200]
            server["software"] = _software(info)
        me = loads_lenient(self._get(session, api.account_verify_credentials).content)
        account_id = str(me.get("id")) if isinstance(me, dict) else ""
        latest = loads_lenient(
            self._get(session, api.account_statuses, account_id, limit=1).content
        )
        if isinstance(latest, list) and latest and isinstance(latest[0], dict):
            status_id = str(latest[0].get("id"))
            if self._history_response(api, session, status_id, None) is None:
                missing["capture_edits"] = (
                    "the server has no edit history (GET /api/v1/statuses/:id/history): only "
                    "the latest version of an edited status is captured"
                )
        else:
            server["edit_history"] = "not checked: the account has no status yet"
        try:
            self._get(session, api.search_v2, "vetline", result_type="statuses", limit=1)
        except (RemoteNotFound, NotImplementedByServer):
            self.mark_unavailable(None, "search_v2", "GET /api/v2/search is not available")
            missing["search"] = "the server does not offer GET /api/v2/search"
        return CapabilityReport(
            allowed=tuple(a for a in allowed if a not in missing), missing=missing, server=server
        )

    # --- Authentication -----------------------------------------------------------------------

    def _app(self, host: str, redirect_uri: str) -> tuple[str, str]:
        """The OAuth app Vetline has on ``host``: from the settings, else registered once and
        remembered (its secret encrypted with the vault key)."""
        configured = (self.config.get("apps") or {}).get(host)
        if isinstance(configured, Mapping):
            return str(configured["client_id"]), str(configured["client_secret"])
        from django.core.cache import cache

        from vetline.accounts.actions import vault

        key = f"vetline:mastodon:app:{host}:{hashlib.sha256(redirect_uri.encode()).hexdigest()}"
        stored = cache.get(key)
        if isinstance(stored, dict):
            return str(stored["client_id"]), vault().decrypt(stored["client_secret"])
        session = self._session()
        try:
            client_id, client_secret = Mastodon.create_app(
                str(self.config.get("app_name") or "Vetline"),
                scopes=list(self.scopes()),
                redirect_uris=redirect_uri,
                website=self.config.get("website") or None,
                api_base_url=self._base_url(host),
                session=session,
            )
        except MastodonError as exc:
            raise self._error(exc) from None
        register_secret(client_secret)
        cache.set(
            key,
            {"client_id": client_id, "client_secret": vault().encrypt(client_secret)},
            timeout=None,
        )
        return client_id, client_secret

    def authorization_url(
        self, *, redirect_uri: str, state: str, code_challenge: str, handle: str
    ) -> str:
        from django.core.cache import cache

        _, host = split_handle(handle, str(self.config.get("default_host") or ""))
        client_id, client_secret = self._app(host, redirect_uri)
        api, session = self._api(host, client_id=client_id, client_secret=client_secret)
        url = self._call(
            session,
            api.auth_request_url,
            client_id=client_id,
            redirect_uris=redirect_uri,
            scopes=list(self.scopes()),
            state=state,
            force_login=True,
        )
        # The code exchange is told only the PKCE verifier: remember which server its
        # challenge belongs to. (Mastodon.py's token request cannot send the verifier, so PKCE
        # is not used with Mastodon; the app is a confidential client and ``state`` is checked.)
        cache.set(f"vetline:mastodon:pending:{code_challenge}", host, timeout=PENDING_SECONDS)
        return str(url)

    def exchange_code(
        self,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        account: AccountRef | None = None,
    ) -> TokenSet:
        from django.core.cache import cache

        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        host = cache.get(f"vetline:mastodon:pending:{challenge}")
        if account is not None:
            # The account being connected says which server issued the code.
            _, host = split_handle(account.handle, str(self.config.get("default_host") or ""))
        if not isinstance(host, str) or not host:
            raise PermanentError("this Mastodon connection request is unknown or has expired")
        client_id, client_secret = self._app(host, redirect_uri)
        api, session = self._api(host, client_id=client_id, client_secret=client_secret)
        scopes = list(self.scopes())
        access_token = self._call(
            session, api.log_in, code=code, redirect_uri=redirect_uri, scopes=scopes
        )
        register_secret(access_token)
        cache.delete(f"vetline:mastodon:pending:{challenge}")
        me = self._call(session, api.account_verify_credentials)
        acct = str(me.get("acct") or me.get("username") or "")
        handle = acct if "@" in acct else f"{acct}@{host}"
        return TokenSet(
            access_token=access_token,
            scopes=tuple(scopes),
            remote_account_id=f"{me['id']}@{host}",
            remote_handle=f"@{handle}",
        )

    # --- Publishing -----------------------------------------------------------------------------

    def _media_post(self, api: Mastodon, session: RetryingSession, media: Any) -> str:
        kwargs = {"mime_type": media.mime_type, "description": media.alt_text or None}
        try:
            uploaded = self._call(session, api.media_post, io.BytesIO(media.content), **kwargs)
        except RemoteNotFound:
            # A server without POST /api/v2/media: the v1 endpoint.
            self.mark_unavailable(None, "media_v2", "POST /api/v2/media answered 404")
            api.mastodon_major = 1
            uploaded = self._call(session, api.media_post, io.BytesIO(media.content), **kwargs)
        return str(uploaded["id"])

    def publish(
        self, *, tokens: TokenSet, request: PublishRequest, account: AccountRef | None = None
    ) -> PublishResult:
        host, _ = self._where(tokens, account.handle if account else None)
        api, session = self._api(host, tokens.access_token)
        media_ids = [self._media_post(api, session, m) for m in request.media]
        # The same request retried (a timeout after the server posted) must not post twice.
        key = hashlib.sha256(
            json.dumps([request.text, request.reply_to_remote_id, media_ids]).encode()
        ).hexdigest()
        status = self._call(
            session,
            api.status_post,
            request.text,
            in_reply_to_id=request.reply_to_remote_id or None,
            media_ids=media_ids or None,
            idempotency_key=key,
        )
        return PublishResult(
            remote_id=str(status["id"]), url=str(status.get("url") or status.get("uri") or "")
        )

    def delete(
        self, *, tokens: TokenSet, remote_id: str, account: AccountRef | None = None
    ) -> None:
        host, _ = self._where(tokens, account.handle if account else None)
        api, session = self._api(host, tokens.access_token)
        try:
            self._call(session, api.status_delete, remote_id)
        except RemoteNotFound:
            return  # already gone: deleting is idempotent

    # --- Capture ------------------------------------------------------------------------------

    def _account_id(
        self, tokens: TokenSet, api: Mastodon, session: RetryingSession
    ) -> tuple[str, dict[str, Any] | None]:
        account_id = tokens.remote_account_id.partition("@")[0]
        if account_id:
            return account_id, None
        me = loads_lenient(self._get(session, api.account_verify_credentials).content)
        if not isinstance(me, dict) or not me.get("id"):
            raise PermanentError("the server did not say which account the token belongs to")
        return str(me["id"]), me

    def fetch_activity(
        self, *, tokens: TokenSet, handle: str, cursor: str | None, limit: int = 100
    ) -> ActivityPage:
        username, host = split_handle(handle, str(self.config.get("default_host") or ""))
        owner = f"{username}@{host}"
        state = CursorState.load(cursor)
        api, session = self._api(host, tokens.access_token)
        account_id, _ = self._account_id(tokens, api, session)
        page_size = max(1, min(PAGE_MAX, limit // 2))
        items: list[Mapping[str, Any] | bytes] = []
        more = False

        # 1. Own statuses (posts, replies, boosts, direct messages), oldest first.
        response = self._get(
            session, api.account_statuses, account_id, min_id=state.statuses or "0", limit=page_size
        )
        split = split_array(response.content)
        seen_now: set[str] = set()
        for element in reversed(split.elements):
            status = element.value
            items.append(status_item(element, status, owner=owner, host=host))
            if isinstance(status, dict) and isinstance(status.get("id"), str):
                seen_now.add(status["id"])
                if status.get("edited_at"):
                    items.extend(self._edits(api, session, element, status, state, owner, host))
                    state.edits[status["id"]] = str(status["edited_at"])
        if split.damaged:
            items.append(split.remainder)  # quarantined; the cursor stays for a new try
        else:
            newest = _newest(response, split.elements, "min_id")
            if newest:
                state.statuses = newest
            more = len(split.elements) >= page_size

        # 2. Mentions: replies and mentions by others, and direct messages to the account.
        response = self._get(
            session,
            api.notifications,
            types=["mention"],
            min_id=state.mentions or "0",
            limit=page_size,
        )
        split = split_array(response.content)
        for element in reversed(split.elements):
            notification = element.value
            if not element.valid_utf8 or not isinstance(notification, dict):
                items.append(element.raw)
                continue
            if notification.get("type") != "mention":
                continue  # a server that ignores the types filter
            status = notification.get("status")
            if status is None:
                # The status was deleted before we saw it: nothing left to archive.
                logger.info(
                    "connectors.mastodon.mention_gone",
                    extra={"notification": str(notification.get("id"))[:40]},
                )
                continue
            items.append(status_item(element, status, owner=owner, host=host))
        if split.damaged:
            items.append(split.remainder)
        else:
            newest = _newest(response, split.elements, "min_id")
            if newest:
                state.mentions = newest
            more = more or len(split.elements) >= page_size

        if not more:
            # 3. Edits and deletions of statuses archived earlier: the newest page, again.
            items.extend(
                self._recent_changes(api, session, account_id, page_size, seen_now, state, owner)
            )
            # 4. The profile.
            items.append(self._profile_item(api, session, owner))
        return ActivityPage(items=items, cursor=state.dump(), more=more)

    def _history_response(
        self,
        api: Mastodon,
        session: RetryingSession,
        status_id: str,
        state: CursorState | None,
    ) -> requests.Response | None:
        """The status's edit history, or None when the server has none (recorded)."""
        try:
            return self._get(session, api.status_history, status_id)
        except NotImplementedByServer:
            self.mark_unavailable(
                state.unavailable if state else None,
                "edit_history",
                "GET /api/v1/statuses/:id/history answered 501",
            )
            return None
        except RemoteNotFound:
            # A 404 means the endpoint is missing, or the status was deleted meanwhile.
            try:
                self._get(session, api.status, status_id)
            except RemoteNotFound:
                return None  # deleted: nothing to capture
            self.mark_unavailable(
                state.unavailable if state else None,
                "edit_history",
                "GET /api/v1/statuses/:id/history answered 404 for an existing status",
            )
            return None

    def _edits(
        self,
        api: Mastodon,
        session: RetryingSession,
        element: RawElement,
        status: dict[str, Any],
        state: CursorState,
        owner: str,
        host: str,
        *,
        seen_before: bool = False,
    ) -> list[Mapping[str, Any] | bytes]:
        status_id = str(status["id"])
        response = None
        if not self.known_unavailable(state.unavailable, "edit_history"):
            response = self._history_response(api, session, status_id, state)
        if response is None:
            # Degraded: only the edited status itself, as the next version, when it was
            # archived before (otherwise the post just archived already holds this text).
            if seen_before:
                return [
                    edit_item(
                        element, status, status_id=status_id, version=None, **_who(owner, host)
                    )
                ]
            return []
        split = split_array(response.content)
        found: list[Mapping[str, Any] | bytes] = []
        # The history lists every version, oldest first; the first is the original post.
        for position, entry in enumerate(split.elements):
            if position == 0:
                continue
            found.append(
                edit_item(
                    entry,
                    entry.value,
                    status_id=status_id,
                    version=position + 1,
                    **_who(owner, host),
                )
            )
        if split.damaged:
            found.append(split.remainder)
        return found

    def _recent_changes(
        self,
        api: Mastodon,
        session: RetryingSession,
        account_id: str,
        page_size: int,
        seen_now: set[str],
        state: CursorState,
        owner: str,
    ) -> list[Mapping[str, Any] | bytes]:
        host = owner.partition("@")[2]
        response = self._get(session, api.account_statuses, account_id, limit=page_size)
        split = split_array(response.content)
        found: list[Mapping[str, Any] | bytes] = []
        listed: list[str] = []
        for element in split.elements:
            status = element.value
            if not isinstance(status, dict) or not isinstance(status.get("id"), str):
                continue
            listed.append(status["id"])
            edited_at = status.get("edited_at")
            if not edited_at or status["id"] in seen_now:
                continue
            if state.edits.get(status["id"]) == str(edited_at):
                continue
            found.extend(
                self._edits(api, session, element, status, state, owner, host, seen_before=True)
            )
            state.edits[status["id"]] = str(edited_at)
        if split.damaged:
            return found  # an incomplete listing says nothing about deletions
        found.extend(self._deletions(api, session, listed, page_size, state, owner))
        return found

    def _deletions(
        self,
        api: Mastodon,
        session: RetryingSession,
        listed: list[str],
        page_size: int,
        state: CursorState,
        owner: str,
    ) -> list[Mapping[str, Any] | bytes]:
        """Own statuses of the previous newest page missing from this one, and still inside
        its range, that the server now says do not exist: deletions. (One that merely slid out
        of the page, older than everything listed, is not asked about.)"""
        previous, state.recent = state.recent, listed
        if previous is None:
            return []
        present = set(listed)
        floor = min(listed, key=_id_key) if len(listed) >= page_size else None
        found: list[Mapping[str, Any] | bytes] = []
        for status_id in previous:
            if status_id in present or (floor and _id_key(status_id) < _id_key(floor)):
                continue
            try:
                self._get(session, api.status, status_id)
            except RemoteNotFound:
                answer = session.last_answer
                found.append(
                    deletion(
                        status_id,
                        answer=bytes(answer.content) if answer is not None else b"{}",
                        author=f"@{owner}",
                        at=None,
                    )
                )
        return found

    def _profile_item(
        self, api: Mastodon, session: RetryingSession, owner: str
    ) -> Mapping[str, Any] | bytes:
        response = self._get(session, api.account_verify_credentials)
        account = loads_lenient(response.content)
        if not isinstance(account, dict):
            return bytes(response.content)
        captured_at = dt.datetime.fromtimestamp(self.clock.now(), tz=dt.UTC).isoformat()
        return profile_snapshot(account, handle=f"@{owner}", captured_at=captured_at)

    def fetch_profile(self, *, tokens: TokenSet, handle: str) -> Profile:
        username, host = split_handle(handle, str(self.config.get("default_host") or ""))
        api, session = self._api(host, tokens.access_token)
        response = self._get(session, api.account_verify_credentials)
        account = loads_lenient(response.content)
        if not isinstance(account, dict):
            raise PermanentError("the server's profile answer is not a JSON object")
        acct = str(account.get("acct") or username)
        return Profile(
            handle=f"@{acct if '@' in acct else f'{acct}@{host}'}",
            display_name=str(account.get("display_name") or ""),
            bio=str(html_to_text(str(account.get("note") or ""))),
            url=str(account.get("url") or ""),
            avatar_url=str(account.get("avatar") or ""),
            remote_account_id=f"{account.get('id')}@{host}",
            raw={k: v for k, v in account.items() if k not in VOLATILE_ACCOUNT_MEMBERS},
        )

    def stream(
        self, *, tokens: TokenSet, handle: str, cursor: str | None, limit: int = 100
    ) -> Iterator[ActivityPage]:
        """Continuous capture through the user streaming API (``/api/v1/streaming/user``,
        server-sent events, Mastodon.py's ``stream_user``), used as a **wake-up**: the stream
        has no cursor and replays nothing, so every event (a status, a notification, an edit,
        a deletion) triggers :meth:`fetch_activity` from the cursor, which is the record. The
        subscription opens first and the catch-up follows, so nothing between is missed, and
        the cursor is the scheduled capture's. A heartbeat page every ``stream_tick_seconds``
        (1) without events; :class:`StreamUnavailable` when the server has no streaming API
        (compatible servers may not) or the connection ends."""
        _, host = split_handle(handle, str(self.config.get("default_host") or ""))
        register_secret(tokens.access_token)
        # The stream needs a plain requests session: the framework's retrying session reads
        # whole answers, and a stream never ends.
        api = Mastodon(
            access_token=tokens.access_token,
            api_base_url=self._base_url(host),
            version_check_mode="none",
            mastodon_version="4.0.0",
            ratelimit_method="throw",
            session=requests.Session(),
            user_agent=str(self.config.get("user_agent") or "Vetline"),
            request_timeout=float(self.config.get("timeout_seconds", 30.0)),
        )
        tick = float(self.config.get("stream_tick_seconds", 1.0))
        events: queue.Queue[object] = queue.Queue()
        try:
            subscription = api.stream_user(_WakeUp(events), run_async=True, reconnect_async=False)
        except (MastodonError, requests.RequestException) as exc:
            raise StreamUnavailable(f"streaming API: {type(exc).__name__}") from exc
        try:
            # Mastodon.py connects in its thread and, when that fails, keeps trying quietly:
            # wait for the connection, or give up and let the caller poll.
            # (Real time: Mastodon.py's thread does not follow the injected clock.)
            wait = float(self.config.get("stream_connect_seconds", 10.0))
            deadline = time.monotonic() + wait
            while subscription.connection is None or not subscription.is_receiving():
                if time.monotonic() > deadline or not subscription.is_alive():
                    raise StreamUnavailable("the streaming API did not accept the connection")
                time.sleep(0.05)
            wake = True  # catch up first: the stream does not replay what came before
            while True:
                while wake:
                    page = self.fetch_activity(
                        tokens=tokens, handle=handle, cursor=cursor, limit=limit
                    )
                    cursor = page.cursor
                    yield page
                    wake = page.more
                try:
                    event = events.get(timeout=tick)
                except queue.Empty:
                    if not subscription.is_receiving():
                        raise StreamUnavailable("the streaming API closed the connection") from None
                    yield ActivityPage(items=[], cursor=None)  # heartbeat
                    continue
                while True:  # several events, one catch-up
                    if isinstance(event, BaseException):
                        raise StreamUnavailable(f"streaming API: {type(event).__name__}")
                    try:
                        event = events.get_nowait()
                    except queue.Empty:
                        break
                wake = True
        finally:
            subscription.close()

    def search(self, *, tokens: TokenSet, query: str, limit: int = 50) -> list[Mapping[str, Any]]:
        host, _ = self._where(tokens)
        api, session = self._api(host, tokens.access_token)
        try:
            response = self._get(
                session, api.search_v2, query, result_type="statuses", limit=min(limit, PAGE_MAX)
            )
        except (RemoteNotFound, NotImplementedByServer):
            self.mark_unavailable(None, "search_v2", "GET /api/v2/search is not available")
            raise Unsupported(
                "this server does not offer status search (GET /api/v2/search)"
            ) from None
        split = split_member_array(response.content, "statuses")
        if split is None:
            raise PermanentError("the server's search answer is not a JSON object")
        owner = ""
        if tokens.remote_handle:
            owner = tokens.remote_handle.lstrip("@")
        found: list[Mapping[str, Any]] = []
        for element in split.elements:
            item = status_item(element, element.value, owner=owner, host=host)
            if not isinstance(item, bytes):
                item.pop(MEDIA_KEY, None)  # search results are not archived: no media fetched
                found.append(item)
        return found


def _who(owner: str, host: str) -> dict[str, str]:
    return {"owner": owner, "host": host}


def _newest(response: requests.Response, elements: list[RawElement], param: str) -> str:
    """The id to resume after: the ``Link`` header's ``prev`` page (Mastodon's newer page)
    when the server sends one, else the newest id of the page."""
    prev = response.links.get("prev", {}).get("url") if response.links else None
    if prev:
        values = parse_qs(urlsplit(prev).query).get(param)
        if values and values[0]:
            return values[0]
    ids = [
        e.value["id"]
        for e in elements
        if isinstance(e.value, dict) and isinstance(e.value.get("id"), str)
    ]
    return max(ids, key=_id_key) if ids else ""


def _software(info: dict[str, Any]) -> str:
    """For people to read in the capability report, never to decide behaviour on."""
    version = str(info.get("version") or "")
    lowered = version.lower()
    for name in ("akkoma", "pleroma", "gotosocial", "takahe", "glitch", "hometown"):
        if name in lowered:
            return name
    if "pleroma" in info:
        return "pleroma"
    if "account_domain" in info and "thumbnail" in info and "compatible" not in lowered:
        return "gotosocial-or-mastodon"
    return "mastodon-compatible"


class _WakeUp(StreamListener):
    """Puts the name of every streaming event (or the error that ended the stream) on a queue;
    what happened is then read through the REST API."""

    def __init__(self, events: queue.Queue[object]) -> None:
        super().__init__()
        self.events = events

    def on_any_event(self, name: str, data: Any = None, for_stream: Any = None) -> None:
        self.events.put(name)

    def on_unknown_event(self, name: str, unknown_event: Any = None) -> None:
        self.events.put(name)  # a newer server's event: still a reason to look

    def on_abort(self, err: Exception) -> None:
        self.events.put(err)
