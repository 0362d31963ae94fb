"""The X connector: API v2 through tweepy (``tweepy.Client``), OAuth 2.0 with PKCE
(``tweepy.OAuth2UserHandler``) and refresh tokens.

Followed: the X API v2 reference at docs.x.com (Tweet object with ``data``/``includes``/
``meta``/``errors``, ``meta.next_token`` pagination, edit fields ``edit_history_tweet_ids`` and
``edit_controls``, DM events, ``POST /2/media/upload``), as read in 2025.

Media are uploaded with the **v2 media endpoint** (``POST https://api.x.com/2/media/upload``,
one-shot multipart, OAuth 2.0 user token with ``media.write``), because v1.1
``API.media_upload`` needs OAuth 1.0a user tokens and is being retired. tweepy 4.17 has no
method for it, so the request is sent through the same retrying session as tweepy's own.

The capture cursor is JSON: per stream (own tweets, mentions, DM events) the ``since_id`` (or
newest DM event) archived, which only grows. X lists newest first; a backlog of several pages is
scanned first (the pagination tokens noted), then archived from its oldest page up, so that
what is archived is always everything up to ``since_id`` (see ``_stream_step``).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import io
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import requests
import tweepy
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError, OAuth2Error
from requests_oauthlib import OAuth2Session

from vetline.connectors.base import (
    AccountRef,
    ActivityPage,
    AuthExpired,
    AuthRevoked,
    Capabilities,
    ConnectorError,
    MediaRef,
    PermanentError,
    Profile,
    PublishRequest,
    PublishResult,
    TokenSet,
    TransientError,
    Unsupported,
    raw_item,
)
from vetline.connectors.http import (
    Response,
    RetryingConnector,
    error_for,
    register_secret,
)
from vetline.connectors.media import avatar_media, check_declared_size, download, with_media
from vetline.connectors.requests_session import (
    RawElement,
    RetryingSession,
    loads_lenient,
    split_array,
    split_member_array,
    split_object,
)

logger = logging.getLogger(__name__)

NETWORK: Final = "x"
AUTHORIZE_URL: Final = "https://x.com/i/oauth2/authorize"
TOKEN_URL: Final = "https://api.x.com/2/oauth2/token"
MEDIA_UPLOAD_URL: Final = "https://api.x.com/2/media/upload"
MEDIA_METADATA_URL: Final = "https://api.x.com/2/media/metadata"
TWEET_FIELDS: Final = [
    "id",
    "text",
    "created_at",
    "author_id",
    "conversation_id",
    "in_reply_to_user_id",
    "referenced_tweets",
    "edit_history_tweet_ids",
    "edit_controls",
    "attachments",
    "entities",
    "note_tweet",
]
EXPANSIONS: Final = [
    "author_id",
    "in_reply_to_user_id",
    "referenced_tweets.id.author_id",
    "attachments.media_keys",
]
#: the Media object's fields (docs.x.com: photos have ``url``; videos and GIFs ``variants``)
MEDIA_FIELDS: Final = [
    "media_key",
    "type",
    "url",
    "variants",
    "alt_text",
    "preview_image_url",
    "width",
    "height",
]
USER_FIELDS: Final = ["id", "name", "username"]
_AVATAR_SIZE = re.compile(r"_(normal|bigger|mini|\d+x\d+)(\.[A-Za-z0-9]+)?$")


def original_avatar_url(url: Any) -> str:
    """The original size of an X profile image: ``profile_image_url`` is the 48x48 ``_normal``
    variant (``…/name_normal.jpg``); the original is the same URL without the size suffix
    (developer.x.com, "User profile images and banners")."""
    if not isinstance(url, str):
        return ""
    base, sep, query = url.partition("?")
    return _AVATAR_SIZE.sub(r"\2", base) + sep + query


PROFILE_FIELDS: Final = ["id", "name", "username", "description", "url", "profile_image_url"]
DM_FIELDS: Final = [
    "id",
    "text",
    "event_type",
    "created_at",
    "dm_conversation_id",
    "sender_id",
    "participant_ids",
    "referenced_tweets",
    "attachments",
]
STREAMS: Final = ("tweets", "mentions", "dms")


def classify(response: Response, now: float) -> ConnectorError | None:
    """X answers 401 for an expired and a revoked token alike: expired is assumed, so that the
    capture refreshes; a refused refresh then means revoked."""
    if response.status == 401:
        return AuthExpired("X refused the access token (HTTP 401)")
    if response.status in (408, 429) or response.status >= 500:
        return error_for(response, now)
    return None


class XForbidden(PermanentError):
    """HTTP 403: the app's access tier or the token's scopes do not allow this."""


class XNotFound(PermanentError):
    """HTTP 404."""


@dataclass
class CursorState:
    streams: dict[str, dict[str, str]] = field(default_factory=dict)
    unavailable: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, cursor: str | None) -> CursorState:
        try:
            data = json.loads(cursor) if cursor else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        streams = {
            name: {str(k): str(v) for k, v in (data.get(name) or {}).items()} for name in STREAMS
        }
        return cls(streams=streams, unavailable=dict(data.get("unavailable") or {}))

    def dump(self) -> str:
        body: dict[str, Any] = {"v": 1, **self.streams, "unavailable": self.unavailable}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))


class XConnector(RetryingConnector):
    network = NETWORK
    label = "X"
    default_scopes = (
        "tweet.read",
        "tweet.write",
        "users.read",
        "offline.access",
        "dm.read",
        "media.write",
    )
    scope_requirements = {
        "publish_post": ("tweet.write", "users.read"),
        "publish_reply": ("tweet.write", "users.read"),
        "publish_media": ("media.write",),
        "delete": ("tweet.write",),
        "capture_own_posts": ("tweet.read", "users.read"),
        "capture_replies": ("tweet.read", "users.read"),
        "capture_mentions": ("tweet.read", "users.read"),
        "capture_direct_messages": ("dm.read",),
        "capture_edits": ("tweet.read",),
        "capture_profile": ("users.read",),
        "search": ("tweet.read",),
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
        capture_deletions=False,
        capture_profile=True,
        streaming=False,
        oauth2=True,
        token_refresh=True,
        search=True,
        notes=(
            "Deletions are not pushed to API clients: a deleted post stays archived as captured "
            "(detectable only by fetching it again).",
            "Direct messages and search depend on the app's paid access tier: on tiers without "
            "them the connection's capability report says so and capture goes on without them.",
            "Recent search covers only the last 7 days; own posts and mentions are limited to "
            "the most recent 3,200 and 800 respectively by the API.",
            "Replies by others are captured when they mention the account (X's mentions "
            "timeline); replies in threads that drop the mention are not.",
        ),
    )

    # --- Plumbing -------------------------------------------------------------------------------

    def _client(self, access_token: str) -> tuple[tweepy.Client, RetryingSession]:
        register_secret(access_token)
        client = tweepy.Client(access_token, return_type=requests.Response)
        session = RetryingSession(
            classify=classify, clock=self.clock, policy=self.policy, rng=self.rng
        )
        client.session = session
        return client, session

    def fetch_media(self, *, tokens: TokenSet, media: MediaRef, max_bytes: int) -> bytes:
        """A post's medium from X's media CDN (``pbs.twimg.com``, ``video.twimg.com``), with
        tweepy's session (the framework's retrying session). The CDN needs no token: none is
        sent."""
        check_declared_size(media, max_bytes)
        _, session = self._client(tokens.access_token)
        return download(
            session=session,
            url=media.ref,
            max_bytes=max_bytes,
            clock=self.clock,
            policy=self.policy,
            rng=self.rng,
        )

    def _get(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> requests.Response:
        try:
            response = fn(*args, user_auth=False, **kwargs)
        except tweepy.errors.Forbidden as exc:
            raise XForbidden(f"X refused the request (HTTP 403): {_detail(exc)}") from None
        except tweepy.errors.NotFound as exc:
            raise XNotFound(f"not found on X (HTTP 404): {_detail(exc)}") from None
        except tweepy.errors.HTTPException as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise PermanentError(f"X refused the request (HTTP {status}): {_detail(exc)}") from None
        assert isinstance(response, requests.Response)
        return response

    # --- Authentication ---------------------------------------------------------------------

    def _handler(self, redirect_uri: str) -> tweepy.OAuth2UserHandler:
        client_id = str(self.config.get("client_id") or "")
        if not client_id:
            raise PermanentError("X is not configured: set VETLINE_CONNECTORS.x.client_id")
        secret = self.config.get("client_secret")
        return tweepy.OAuth2UserHandler(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=list(self.scopes()),
            client_secret=str(secret) if secret else None,
        )

    def authorization_url(
        self, *, redirect_uri: str, state: str, code_challenge: str, handle: str
    ) -> str:
        handler = self._handler(redirect_uri)
        url, _ = handler.authorization_url(
            AUTHORIZE_URL,
            state=state,
            code_challenge=code_challenge,
            code_challenge_method="S256",
        )
        return str(url)

    def _token_set(self, token: Mapping[str, Any], *, me: Mapping[str, Any] | None) -> TokenSet:
        access = str(token["access_token"])
        refresh = str(token.get("refresh_token") or "")
        register_secret(access)
        register_secret(refresh)
        expires_in = token.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float):
            expires_at = dt.datetime.fromtimestamp(self.clock.now() + float(expires_in), tz=dt.UTC)
        scope = token.get("scope") or ""
        scopes = tuple(scope) if isinstance(scope, list) else tuple(str(scope).split())
        return TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_at=expires_at,
            scopes=scopes,
            remote_account_id=str(me.get("id") or "") if me else "",
            remote_handle=f"@{me.get('username')}" if me else "",
        )

    def _token_request(
        self, call: Callable[[], Mapping[str, Any]], *, refreshing: bool = False
    ) -> Mapping[str, Any]:
        try:
            return call()
        except InvalidGrantError as exc:
            raise AuthRevoked("X refused the grant: access was revoked or has lapsed") from exc
        except OAuth2Error as exc:
            if refreshing:
                # X answers a revoked or used-up refresh token with invalid_request.
                raise AuthRevoked(f"X refused the refresh token ({exc.error})") from exc
            raise PermanentError(f"X refused the token request: {exc.error}") from exc
        except requests.RequestException as exc:
            raise TransientError(f"network error: {type(exc).__name__}") from exc

    def exchange_code(
        self,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        account: AccountRef | None = None,
    ) -> TokenSet:
        handler = self._handler(redirect_uri)
        token = self._token_request(
            lambda: OAuth2Session.fetch_token(
                handler,
                TOKEN_URL,
                code=code,
                auth=handler.auth,
                include_client_id=True,
                code_verifier=code_verifier,
            )
        )
        client, _ = self._client(str(token["access_token"]))
        body = loads_lenient(self._get(client.get_me, user_fields=USER_FIELDS).content)
        me = body.get("data") if isinstance(body, dict) else None
        if not isinstance(me, dict):
            raise PermanentError("X did not say which account the token belongs to")
        return self._token_set(token, me=me)

    def refresh(self, *, tokens: TokenSet) -> TokenSet:
        handler = self._handler(str(self.config.get("redirect_uri") or "https://invalid/"))
        token = self._token_request(
            lambda: OAuth2Session.refresh_token(
                handler,
                TOKEN_URL,
                refresh_token=tokens.refresh_token,
                auth=handler.auth,
                client_id=handler.client_id,
            ),
            refreshing=True,
        )
        fresh = self._token_set(token, me=None)
        return TokenSet(
            access_token=fresh.access_token,
            refresh_token=fresh.refresh_token or tokens.refresh_token,
            expires_at=fresh.expires_at,
            scopes=fresh.scopes or tokens.scopes,
            remote_account_id=tokens.remote_account_id,
            remote_handle=tokens.remote_handle,
        )

    # --- Publishing -----------------------------------------------------------------------------

    def _upload(self, session: RetryingSession, access_token: str, media: Any) -> str:
        headers = {"Authorization": f"Bearer {access_token}"}
        category = "tweet_gif" if media.mime_type == "image/gif" else "tweet_image"
        if media.mime_type.startswith("video/"):
            raise Unsupported("video upload needs X's chunked upload, which is not implemented")
        response = session.request(
            "POST",
            MEDIA_UPLOAD_URL,
            headers=headers,
            files={"media": ("media", io.BytesIO(media.content), media.mime_type)},
            data={"media_category": category, "media_type": media.mime_type},
        )
        body = loads_lenient(response.content)
        if not response.ok or not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise PermanentError(f"X refused the media upload (HTTP {response.status_code})")
        media_id = str(body["data"].get("id") or body["data"].get("media_id_string") or "")
        if media.alt_text:
            meta = session.request(
                "POST",
                MEDIA_METADATA_URL,
                headers=headers,
                json={"id": media_id, "metadata": {"alt_text": {"text": media.alt_text[:1000]}}},
            )
            if not meta.ok:
                raise PermanentError(f"X refused the alternative text (HTTP {meta.status_code})")
        return media_id

    def publish(
        self, *, tokens: TokenSet, request: PublishRequest, account: AccountRef | None = None
    ) -> PublishResult:
        client, session = self._client(tokens.access_token)
        media_ids = [self._upload(session, tokens.access_token, m) for m in request.media]
        # X has no idempotency key: a post retried after a 5xx or a timeout could be published
        # twice, so the post itself is sent once (rate limits are still raised, unposted).
        session.policy = dataclasses.replace(self.policy, max_attempts=1)
        try:
            response = self._get(
                client.create_tweet,
                text=request.text,
                in_reply_to_tweet_id=request.reply_to_remote_id or None,
                media_ids=media_ids or None,
            )
        except TransientError as exc:
            raise TransientError(
                f"{exc.message}: the post may or may not have been published; check the "
                "account before trying again"
            ) from None
        body = loads_lenient(response.content)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not data.get("id"):
            raise PermanentError("X did not return the id of the published post")
        remote_id = str(data["id"])
        return PublishResult(remote_id=remote_id, url=f"https://x.com/i/web/status/{remote_id}")

    def delete(
        self, *, tokens: TokenSet, remote_id: str, account: AccountRef | None = None
    ) -> None:
        client, _ = self._client(tokens.access_token)
        try:
            self._get(client.delete_tweet, remote_id)
        except XNotFound:
            return  # already gone: deleting is idempotent

    # --- Capture ------------------------------------------------------------------------------

    def _me(self, tokens: TokenSet, client: tweepy.Client, handle: str) -> tuple[str, str]:
        if tokens.remote_account_id:
            return tokens.remote_account_id, (tokens.remote_handle or handle).lstrip("@")
        body = loads_lenient(self._get(client.get_me, user_fields=USER_FIELDS).content)
        me = body.get("data") if isinstance(body, dict) else None
        if not isinstance(me, dict):
            raise PermanentError("X did not say which account the token belongs to")
        return str(me.get("id")), str(me.get("username"))

    def fetch_activity(
        self, *, tokens: TokenSet, handle: str, cursor: str | None, limit: int = 100
    ) -> ActivityPage:
        client, _ = self._client(tokens.access_token)
        user_id, username = self._me(tokens, client, handle)
        owner = (user_id, username or handle.lstrip("@"))
        state = CursorState.load(cursor)
        max_results = max(5, min(100, limit // 3))
        items: list[Mapping[str, Any] | bytes] = []
        more = False
        for name, fn in (
            ("tweets", client.get_users_tweets),
            ("mentions", client.get_users_mentions),
        ):
            found, stream_more = self._timeline(
                fn, user_id, state.streams[name], max_results, owner
            )
            items.extend(found)
            more = more or stream_more
        if not self.known_unavailable(state.unavailable, "direct_messages"):
            try:
                found, stream_more = self._dms(client, state.streams["dms"], max_results, owner)
            except XForbidden as exc:
                self.mark_unavailable(state.unavailable, "direct_messages", exc.message)
            else:
                items.extend(found)
                more = more or stream_more
        if not more:
            items.append(self._profile_item(client, owner))
        return ActivityPage(items=items, cursor=state.dump(), more=more)

    def _timeline(
        self,
        fn: Callable[..., Any],
        user_id: str,
        stream: dict[str, str],
        max_results: int,
        owner: tuple[str, str],
    ) -> tuple[list[Mapping[str, Any] | bytes], bool]:
        def fetch(token: str | None, since_id: str) -> requests.Response:
            params: dict[str, Any] = {
                "max_results": max_results,
                "tweet_fields": TWEET_FIELDS,
                "expansions": EXPANSIONS,
                "user_fields": USER_FIELDS,
                "media_fields": MEDIA_FIELDS,
            }
            if since_id:
                params["since_id"] = since_id
            if token:
                params["pagination_token"] = token
            return self._get(fn, user_id, **params)

        return self._stream_step(fetch, stream, lambda e, users: tweet_item(e, users, owner))

    def _dms(
        self,
        client: tweepy.Client,
        stream: dict[str, str],
        max_results: int,
        owner: tuple[str, str],
    ) -> tuple[list[Mapping[str, Any] | bytes], bool]:
        # DM events have no since_id: page from the newest, stop at the newest already archived.
        def fetch(token: str | None, since_id: str) -> requests.Response:
            params: dict[str, Any] = {
                "max_results": max_results,
                "dm_event_fields": DM_FIELDS,
                "event_types": "MessageCreate",
                "expansions": ["sender_id", "participant_ids"],
                "user_fields": USER_FIELDS,
            }
            if token:
                params["pagination_token"] = token
            return self._get(client.get_direct_message_events, **params)

        return self._stream_step(
            fetch, stream, lambda e, users: dm_item(e, users, owner), stop_at_archived=True
        )

    def _stream_step(
        self,
        fetch: Callable[[str | None, str], requests.Response],
        stream: dict[str, str],
        to_item: Callable[[RawElement, dict[str, str]], Mapping[str, Any] | bytes],
        *,
        stop_at_archived: bool = False,
    ) -> tuple[list[Mapping[str, Any] | bytes], bool]:
        """One request of one stream; returns its items, oldest first, and whether the stream
        has more now. X lists newest first, so a backlog of several pages is first *scanned*
        (each page's pagination token noted, nothing emitted) down to the archived boundary,
        then *emitted* from its oldest page up: the stream's ``since_id`` only ever grows, and
        whatever is archived is a contiguous run from the past up to it. (A backlog reads all but
        its oldest page twice; the usual capture, a single page of news, is one request.)"""
        since_id = stream.get("since_id", "")
        boundary = stream.get("scan_since", since_id)
        stop_at = boundary if stop_at_archived else ""
        pending = _tokens(stream.get("pending"))
        if pending:
            page = _read_page(fetch(pending[-1] or None, boundary), to_item, stop_at=stop_at)
            if page.damaged:
                return page.items, False  # quarantined; this page is read again next time
            pending.pop()
            _advance(stream, page.newest)
            if pending:
                stream["pending"] = json.dumps(pending)
                return page.items, True
            _finish_backlog(stream)
            return page.items, False
        token = stream.get("scan_next") or None
        page = _read_page(fetch(token, boundary), to_item, stop_at=stop_at)
        if page.damaged:
            return page.items, False
        last = not page.next_token or page.reached
        if token is None and last:
            _advance(stream, page.newest)  # the usual case: all the news in one page
            return page.items, False
        scanned = [*_tokens(stream.get("scanned")), token or ""]
        if token is None:
            stream["scan_since"] = boundary
            stream["backlog_newest"] = page.newest
        if not last:
            stream["scanned"] = json.dumps(scanned)
            stream["scan_next"] = str(page.next_token)
            return [], True
        # The oldest page of the backlog: emit it now, then the others going up.
        stream.pop("scanned", None)
        stream.pop("scan_next", None)
        _advance(stream, page.newest)
        pending = scanned[:-1]
        if pending:
            stream["pending"] = json.dumps(pending)
            return page.items, True
        _finish_backlog(stream)
        return page.items, False

    def _profile_item(
        self, client: tweepy.Client, owner: tuple[str, str]
    ) -> Mapping[str, Any] | bytes:
        response = self._get(client.get_me, user_fields=PROFILE_FIELDS)
        body = loads_lenient(response.content)
        me = body.get("data") if isinstance(body, dict) else None
        if not isinstance(me, dict):
            return bytes(response.content)
        raw = json.dumps(me, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(raw.encode("utf-8", errors="surrogateescape")).hexdigest()[:16]
        captured_at = dt.datetime.fromtimestamp(self.clock.now(), tz=dt.UTC).isoformat()
        item: dict[str, Any] = {
            "remote_id": f"profile:{me.get('id')}:{digest}",
            "kind": "profile_snapshot",
            "direction": "outbound",
            "author": f"@{me.get('username') or owner[1]}",
            "text": f"{me.get('name') or ''}\n{me.get('description') or ''}".strip(),
            "network_timestamp": captured_at,
            "raw": raw,
        }
        return with_media(item, avatar_media(original_avatar_url(me.get("profile_image_url"))))

    def fetch_profile(self, *, tokens: TokenSet, handle: str) -> Profile:
        client, _ = self._client(tokens.access_token)
        body = loads_lenient(self._get(client.get_me, user_fields=PROFILE_FIELDS).content)
        me = body.get("data") if isinstance(body, dict) else None
        if not isinstance(me, dict):
            raise PermanentError("X's profile answer has no data")
        return Profile(
            handle=f"@{me.get('username')}",
            display_name=str(me.get("name") or ""),
            bio=str(me.get("description") or ""),
            url=f"https://x.com/{me.get('username')}",
            avatar_url=str(me.get("profile_image_url") or ""),
            remote_account_id=str(me.get("id") or ""),
            raw=me,
        )

    def search(self, *, tokens: TokenSet, query: str, limit: int = 50) -> list[Mapping[str, Any]]:
        client, _ = self._client(tokens.access_token)
        try:
            response = self._get(
                client.search_recent_tweets,
                query,
                max_results=max(10, min(100, limit)),
                tweet_fields=TWEET_FIELDS,
                expansions=EXPANSIONS,
                user_fields=USER_FIELDS,
            )
        except XForbidden as exc:
            self.mark_unavailable(None, "search", exc.message)
            raise Unsupported(
                f"search is not available on this X access tier: {exc.message}"
            ) from None
        split = split_member_array(bytes(response.content), "data")
        parsed = loads_lenient(bytes(response.content))
        if split is None or not isinstance(parsed, dict):
            raise PermanentError("X's search answer is not a JSON object")
        users = _users(parsed)
        owner = (tokens.remote_account_id, tokens.remote_handle.lstrip("@"))
        found: list[Mapping[str, Any]] = []
        for element in split.elements:
            item = tweet_item(element, users, owner)
            if not isinstance(item, bytes):
                found.append(item)  # search results are not archived: no media fetched
        return found


# --- Mapping (pure) ------------------------------------------------------------------------------


def _detail(exc: tweepy.errors.HTTPException) -> str:
    messages = [m for m in getattr(exc, "api_messages", []) if isinstance(m, str)]
    return "; ".join(messages)[:200] or "no detail"


def _id_key(value: str) -> tuple[int, str]:
    return len(value), value


@dataclass(slots=True)
class _Page:
    items: list[Mapping[str, Any] | bytes]
    newest: str = ""
    next_token: str = ""
    reached: bool = False  # an item already archived was met (DM events)
    damaged: bool = False


def _read_page(
    response: requests.Response,
    to_item: Callable[[RawElement, dict[str, str]], Mapping[str, Any] | bytes],
    *,
    stop_at: str = "",
) -> _Page:
    """One answer of a list endpoint: its items oldest first (what is unreadable as its bytes,
    for quarantine), its newest id and its next page's token."""
    body = bytes(response.content)
    split = split_member_array(body, "data")
    parsed = loads_lenient(body)
    if split is None or not isinstance(parsed, dict):
        return _Page(items=[body], damaged=True)  # quarantined whole
    users = _users(parsed)
    media = _media_elements(body)
    page = _Page(items=[])
    for element in reversed(split.elements):
        if stop_at and _id_of(element) and _le(_id_of(element), stop_at):
            page.reached = True
            continue
        item = to_item(element, users)
        if media and isinstance(item, dict):
            item = _with_media(item, element, media)
        page.items.append(item)
    if split.damaged:
        page.items.append(split.remainder)
        page.damaged = True
        return page
    meta = parsed.get("meta") if isinstance(parsed.get("meta"), dict) else {}
    assert isinstance(meta, dict)
    page.newest = str(meta.get("newest_id") or "") or max(
        (i for i in (_id_of(e) for e in split.elements) if i), key=_id_key, default=""
    )
    page.next_token = str(meta.get("next_token") or "")
    return page


def _tokens(value: str | None) -> list[str]:
    try:
        data = json.loads(value) if value else []
    except ValueError:
        return []
    return [str(t) for t in data] if isinstance(data, list) else []


def _advance(stream: dict[str, str], newest: str) -> None:
    """Move the stream's archived boundary up to ``newest`` (never down)."""
    if newest and not _le(newest, stream.get("since_id", "")):
        stream["since_id"] = newest


def _finish_backlog(stream: dict[str, str]) -> None:
    _advance(stream, stream.pop("backlog_newest", ""))
    for key in ("scan_since", "pending", "scanned", "scan_next"):
        stream.pop(key, None)


def _le(a: str, b: str) -> bool:
    return _id_key(a) <= _id_key(b)


def _id_of(element: RawElement) -> str:
    value = element.value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return ""


def _media_elements(body: bytes) -> dict[str, RawElement]:
    """The expanded Media objects of an answer (``includes.media``) by ``media_key``, each with
    its exact bytes."""
    top = split_object(body)
    if top is None or "includes" not in top[0]:
        return {}
    includes = split_object(top[0]["includes"].encode("utf-8", errors="surrogateescape"))
    if includes is None or "media" not in includes[0]:
        return {}
    split = split_array(includes[0]["media"].encode("utf-8", errors="surrogateescape"))
    found: dict[str, RawElement] = {}
    for element in split.elements:
        value = element.value
        if (
            element.valid_utf8
            and isinstance(value, dict)
            and isinstance(value.get("media_key"), str)
        ):
            found[value["media_key"]] = element
    return found


def media_ref(media: Mapping[str, Any]) -> MediaRef:
    """Where a Media object's bytes are: a photo's ``url``; for a video or an animated GIF the
    MP4 variant with the highest bit rate (the original upload is not offered). A medium X
    gives no URL for is named by its key, and reported missing when fetched."""
    alt = media.get("alt_text")
    alt_text = alt if isinstance(alt, str) else ""
    url = media.get("url")
    if isinstance(url, str) and url:
        return MediaRef(ref=url, alt_text=alt_text)
    variants = [
        v
        for v in media.get("variants") or []
        if isinstance(v, dict) and isinstance(v.get("url"), str) and v["url"]
    ]
    mp4 = [v for v in variants if v.get("content_type") == "video/mp4"]
    if mp4 or variants:
        best = max(mp4 or variants, key=lambda v: v.get("bit_rate") or 0)
        return MediaRef(
            ref=best["url"], mime_type=str(best.get("content_type") or ""), alt_text=alt_text
        )
    return MediaRef(ref=f"media_key:{media.get('media_key')}", alt_text=alt_text)


def _with_media(
    item: dict[str, Any], element: RawElement, media: dict[str, RawElement]
) -> dict[str, Any]:
    """A Tweet item with the Media objects it names (``attachments.media_keys``): the media
    are announced for capture, and its raw payload becomes the Tweet with those Media objects
    as the API sent them, in the API's own single-Tweet shape (``{"data": …, "includes":
    {"media": […]}}``), so alt text and types are archived as received."""
    tweet = element.value
    attachments = tweet.get("attachments") if isinstance(tweet, dict) else None
    keys = attachments.get("media_keys") if isinstance(attachments, dict) else None
    found = [media[k] for k in keys or [] if isinstance(k, str) and k in media]
    if not found:
        return item
    raw = (
        b'{"data":'
        + element.raw
        + b',"includes":{"media":['
        + b",".join(m.raw for m in found)
        + b"]}}"
    )
    item["raw_payload_b64"] = base64.b64encode(raw).decode("ascii")
    return with_media(item, [media_ref(m.value) for m in found])


def _users(parsed: dict[str, Any]) -> dict[str, str]:
    includes = parsed.get("includes")
    users = includes.get("users") if isinstance(includes, dict) else None
    found: dict[str, str] = {}
    for user in users if isinstance(users, list) else []:
        if isinstance(user, dict) and isinstance(user.get("id"), str):
            found[user["id"]] = f"@{user.get('username')}"
    return found


def tweet_item(
    element: RawElement, users: dict[str, str], owner: tuple[str, str]
) -> Mapping[str, Any] | bytes:
    """One Tweet object as an item; its raw payload is the object's exact bytes. The expanded
    users (``includes.users``) give handles; the rest of ``includes`` is not part of the item."""
    tweet = element.value
    if not element.valid_utf8 or not isinstance(tweet, dict):
        return element.raw
    author_id = tweet.get("author_id")
    author = users.get(author_id, author_id) if isinstance(author_id, str) else author_id
    refs: dict[str, Any] = {}
    for ref in tweet.get("referenced_tweets") or []:
        if isinstance(ref, dict):
            refs[str(ref.get("type"))] = ref.get("id")
    note = tweet.get("note_tweet")
    text = note.get("text") if isinstance(note, dict) and note.get("text") else tweet.get("text")
    tweet_id = tweet.get("id")
    history = tweet.get("edit_history_tweet_ids")
    item: dict[str, Any] = {
        "remote_id": tweet_id,
        "direction": "outbound" if author_id == owner[0] else "inbound",
        "author": author,
        "text": text,
        "network_timestamp": tweet.get("created_at"),
    }
    if isinstance(history, list) and len(history) > 1 and tweet_id in history[1:]:
        # An edit is a new post id; its history starts with the original post's id.
        item.update(
            remote_id=history[0],
            kind="edit",
            version=history.index(tweet_id) + 1,
            parent_remote_id=history[0],
        )
    elif "retweeted" in refs:
        item.update(kind="share", parent_remote_id=refs["retweeted"])
    elif "replied_to" in refs:
        item.update(kind="reply", parent_remote_id=refs["replied_to"])
    else:
        item["kind"] = "post"
    conversation = tweet.get("conversation_id")
    if conversation is not None:
        item["conversation_id"] = conversation
        item["thread_id"] = conversation
    reply_to_user = tweet.get("in_reply_to_user_id")
    if isinstance(reply_to_user, str) and isinstance(author, str):
        item["participants"] = sorted({author, users.get(reply_to_user, reply_to_user)})
    return raw_item(element.raw, **item)


def dm_item(
    element: RawElement, users: dict[str, str], owner: tuple[str, str]
) -> Mapping[str, Any] | bytes:
    event = element.value
    if not element.valid_utf8 or not isinstance(event, dict):
        return element.raw
    sender = event.get("sender_id")
    conversation = event.get("dm_conversation_id")
    ids = event.get("participant_ids")
    if not isinstance(ids, list) and isinstance(conversation, str) and "-" in conversation:
        ids = conversation.split("-")  # one-to-one conversations are "<id>-<id>"
    participants = sorted(
        {
            users.get(i, i) if i != owner[0] else f"@{owner[1]}"
            for i in ids or []
            if isinstance(i, str)
        }
    )
    item: dict[str, Any] = {
        "remote_id": event.get("id"),
        "kind": "direct_message",
        "direction": "outbound" if sender == owner[0] else "inbound",
        "author": users.get(sender, sender) if isinstance(sender, str) else sender,
        "text": event.get("text"),
        "network_timestamp": event.get("created_at"),
        "conversation_id": conversation,
        "participants": participants,
    }
    return raw_item(element.raw, **item)
