"""The connector interface: what every network plugin provides (plain Python, no ORM).

A connector speaks to one network. It declares honestly what that network's API lets Vetline
publish and capture (:class:`Capabilities`), and implements the operations below. Operations
that the network does not offer raise :class:`Unsupported`; the capability flags say so in
advance, so callers never have to find out by trying.

Items returned by :meth:`Connector.fetch_activity` are in the archive's item schema
(:mod:`vetline.archive.items`): a mapping, or the raw bytes of one JSON object when the network
sent something that cannot be decoded (the archive then quarantines it with its bytes kept).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Final

# --- Errors --------------------------------------------------------------------------------


class ConnectorError(Exception):
    """Base of every error a connector raises. ``message`` never contains a token."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RateLimited(ConnectorError):
    """The network asked us to slow down. ``retry_after`` is in seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(0.0, retry_after)


class TransientError(ConnectorError):
    """A failure worth retrying: a timeout, a reset connection, a 5xx."""


class AuthExpired(ConnectorError):
    """The access token has expired; a refresh (or a reconnection) is needed."""


class AuthRevoked(ConnectorError):
    """The account holder or the network withdrew our access; only reconnecting helps."""


class PermanentError(ConnectorError):
    """The request will never succeed as sent (4xx other than auth and rate limits)."""


class Unsupported(PermanentError):
    """The network's API does not offer this operation (see the capabilities)."""


class MediaTooLarge(PermanentError):
    """A captured medium is larger than the operator's limit (``VETLINE_CAPTURE_MEDIA_MAX_BYTES``):
    it is not fetched (or not kept), and the item is archived without it, saying so."""

    def __init__(self, message: str, *, size_bytes: int | None = None) -> None:
        super().__init__(message)
        self.size_bytes = size_bytes


class StreamUnavailable(TransientError):
    """The network's stream (firehose, websocket) cannot be reached or refused the connection
    right now; capture falls back to polling and tries streaming again later."""


# --- Capabilities ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the network's API lets Vetline do. False means *the API does not allow it*, not
    "not implemented yet": the capability table in docs/connectors.md says why."""

    # Publishing
    publish_post: bool = False
    publish_reply: bool = False
    publish_media: bool = False
    delete: bool = False
    # Capture
    capture_own_posts: bool = False
    capture_replies: bool = False  # replies and comments by others on our posts
    capture_mentions: bool = False
    capture_direct_messages: bool = False
    capture_edits: bool = False
    capture_deletions: bool = False
    capture_profile: bool = False
    streaming: bool = False  # near-real-time push (firehose, websocket) besides polling
    # Authentication
    oauth2: bool = False
    app_password: bool = False  # connected by signing in with an app password
    token_refresh: bool = False
    search: bool = False
    # Why some of the flags above are False, in the network's terms.
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["notes"] = list(self.notes)
        return data

    @property
    def can_capture(self) -> bool:
        return any(
            (
                self.capture_own_posts,
                self.capture_replies,
                self.capture_mentions,
                self.capture_direct_messages,
                self.capture_profile,
            )
        )


CAPABILITY_LABELS: dict[str, str] = {
    "publish_post": "publish posts",
    "publish_reply": "publish replies",
    "publish_media": "publish media",
    "delete": "delete",
    "capture_own_posts": "capture own posts",
    "capture_replies": "capture replies and comments by others",
    "capture_mentions": "capture mentions",
    "capture_direct_messages": "capture direct messages",
    "capture_edits": "capture edits",
    "capture_deletions": "capture deletions",
    "capture_profile": "capture the profile",
    "streaming": "streaming capture",
    "oauth2": "OAuth 2",
    "app_password": "connect with an app password",
    "token_refresh": "token refresh",
    "search": "search",
}


# --- Values exchanged with connectors ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What the network granted. Its ``repr`` never shows the secrets."""

    access_token: str = field(repr=False)
    refresh_token: str = field(default="", repr=False)
    expires_at: dt.datetime | None = None
    scopes: tuple[str, ...] = ()
    remote_account_id: str = ""
    remote_handle: str = ""

    def expired(self, now: dt.datetime, *, skew_seconds: int = 60) -> bool:
        return self.expires_at is not None and self.expires_at <= now + dt.timedelta(
            seconds=skew_seconds
        )


@dataclass(frozen=True, slots=True)
class AuthorizationStart:
    """The first leg of OAuth 2 (with PKCE): send the person to ``url``; keep ``state`` and
    ``code_verifier`` to check and finish the second leg."""

    url: str
    state: str
    code_verifier: str = field(repr=False)


def new_pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


@dataclass(frozen=True, slots=True)
class Media:
    """One attachment to publish: its bytes, type and alternative text."""

    content: bytes = field(repr=False)
    mime_type: str
    alt_text: str = ""


#: The item key under which a connector hands over the media of a captured item (a list of
#: :class:`MediaRef`). The framework fetches them before archiving, stores their bytes as blobs,
#: puts the blobs' SHA-256 names in the item's ``attachments`` and removes this key: the
#: archive's item schema has no such field.
MEDIA_KEY: Final = "media"


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A medium (image, video, file) attached to a captured item, as the network announced it.

    ``ref``: where the connector fetches it (a URL, or the network's blob id: a Bluesky CID);
    ``owner``: whose it is where the network needs that to fetch it (the DID of the repository
    holding a Bluesky blob); ``mime_type``, ``alt_text`` and ``size_bytes`` (None: unknown) as
    the network gave them. Alt text and type stay in the item's raw payload where the network
    put them; here they serve the connector and the failure report, and are not stored twice."""

    ref: str
    mime_type: str = ""
    alt_text: str = ""
    size_bytes: int | None = None
    owner: str = ""


@dataclass(frozen=True, slots=True)
class PublishRequest:
    text: str
    reply_to_remote_id: str = ""
    media: tuple[Media, ...] = ()


@dataclass(frozen=True, slots=True)
class PublishResult:
    remote_id: str
    url: str


@dataclass(frozen=True, slots=True)
class ActivityPage:
    """Items since a cursor, and the cursor to resume from once they are archived.

    ``cursor`` is opaque to Vetline and stored as is. ``more`` says whether another page is
    ready now (the scheduler keeps fetching until it is False)."""

    items: Sequence[Mapping[str, Any] | bytes | Malformed]
    cursor: str | None
    more: bool = False


@dataclass(frozen=True, slots=True)
class Profile:
    handle: str
    display_name: str = ""
    bio: str = ""
    url: str = ""
    avatar_url: str = ""
    remote_account_id: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccountRef:
    """The registered account a call is for, as far as a connector needs to know it: which
    Mastodon server, which Facebook Page or Instagram account among those a login granted,
    whether a LinkedIn handle is an organization page. ``remote_account_id`` is the network's id
    stored at connection (empty before it)."""

    handle: str
    kind: str = ""  # corporate or employee
    display_name: str = ""
    remote_account_id: str = ""

    @property
    def bare_handle(self) -> str:
        return self.handle.strip().lstrip("@")


@dataclass(frozen=True, slots=True)
class Malformed:
    """An item the network sent that the connector cannot turn into the item schema, with the
    connector's reason. Capture quarantines ``payload`` (the bytes as received) with it."""

    payload: bytes = field(repr=False)
    reason: str
    remote_id: str = ""


#: What a capability needs: publishing and capture capabilities (the flags in
#: :class:`Capabilities`) that a probe checks for a connected account.
PROBED_CAPABILITIES: tuple[str, ...] = (
    "publish_post",
    "publish_reply",
    "publish_media",
    "delete",
    "capture_own_posts",
    "capture_replies",
    "capture_mentions",
    "capture_direct_messages",
    "capture_edits",
    "capture_deletions",
    "capture_profile",
    "search",
)


@dataclass(frozen=True, slots=True)
class CapabilityReport:
    """What the access granted for one connected account actually allows: the network's declared
    capabilities, narrowed by the scopes granted and by what the server was found to offer.

    ``allowed``: capability names that work. ``missing``: capability name -> why it does not
    (a scope not granted, an endpoint the server lacks). Capabilities the network's API never
    offers are in neither. ``server``: facts for people to read (software, version)."""

    allowed: tuple[str, ...] = ()
    missing: Mapping[str, str] = field(default_factory=dict)
    server: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "allowed": list(self.allowed),
            "missing": dict(self.missing),
            "server": dict(self.server),
        }


def scope_granted(required: str, granted: Sequence[str]) -> bool:
    """Whether ``required`` is among ``granted``, where a scope also covers its sub-scopes
    (Mastodon's ``read`` covers ``read:statuses``; ``write`` covers ``write:media``)."""
    return any(scope == required or required.startswith(scope + ":") for scope in granted)


def report_from_scopes(
    capabilities: Capabilities,
    requirements: Mapping[str, tuple[str, ...]],
    granted: Sequence[str],
) -> tuple[list[str], dict[str, str]]:
    """(allowed, missing) for the declared capabilities, given the scopes each one needs. When
    the network reported no scopes at all, every declared capability is taken as allowed."""
    allowed: list[str] = []
    missing: dict[str, str] = {}
    if not granted:
        requirements = {}  # the network did not report the scopes: nothing to narrow by
    for name in PROBED_CAPABILITIES:
        if not getattr(capabilities, name):
            continue
        lacking = [s for s in requirements.get(name, ()) if not scope_granted(s, granted)]
        if lacking:
            missing[name] = "scope not granted: " + ", ".join(lacking)
        else:
            allowed.append(name)
    return allowed, missing


# --- The interface ---------------------------------------------------------------------------


class Connector(ABC):
    """One network. Subclass it in a plugin and declare it under the ``vetline.connectors``
    entry point group (see docs/connectors.md).

    Implementations are constructed with the operator's settings for that network (client
    id, client secret, base URL…) and must be safe to construct without network access.
    """

    #: the account registry's network code (``vetline.accounts.models.Network``)
    network: ClassVar[str]
    #: what people see
    label: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    #: a training network (the sandbox): labelled as such everywhere
    training_only: ClassVar[bool] = False
    #: OAuth scopes requested when connecting
    default_scopes: ClassVar[tuple[str, ...]] = ()
    #: the scopes each capability needs (capability name -> scopes); the default probe narrows
    #: the declared capabilities with it. A capability not listed needs no particular scope.
    scope_requirements: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def __init__(self, *, config: Mapping[str, Any] | None = None) -> None:
        self.config: Mapping[str, Any] = dict(config or {})

    def scopes(self) -> tuple[str, ...]:
        """The scopes to ask for: the operator's ``scopes`` setting, else the defaults."""
        configured = self.config.get("scopes")
        return tuple(configured) if configured else self.default_scopes

    # Authentication (OAuth 2 where the network does it)
    @abstractmethod
    def authorization_url(
        self, *, redirect_uri: str, state: str, code_challenge: str, handle: str
    ) -> str:
        """Where to send the account holder to grant access."""

    @abstractmethod
    def exchange_code(
        self,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        account: AccountRef | None = None,
    ) -> TokenSet:
        """Second leg of OAuth: the authorization code for tokens. ``account`` is the registered
        account being connected (the framework always passes it)."""

    def sign_in(
        self, *, identifier: str, app_password: str, account: AccountRef | None = None
    ) -> TokenSet:
        """Exchange an app password (never stored) for tokens, on networks connected that way
        (``capabilities.app_password``)."""
        raise Unsupported(f"{self.label} accounts are not connected with an app password.")

    def refresh(self, *, tokens: TokenSet) -> TokenSet:
        """New tokens from the refresh token. Raises AuthRevoked when the network refuses."""
        raise Unsupported(f"{self.label} does not refresh tokens; reconnect the account.")

    # Publishing
    @abstractmethod
    def publish(
        self, *, tokens: TokenSet, request: PublishRequest, account: AccountRef | None = None
    ) -> PublishResult:
        """Publish a post, or a reply when ``reply_to_remote_id`` is set, as ``account`` (when
        None: the account the tokens were stored for, ``tokens.remote_handle`` and
        ``tokens.remote_account_id``)."""

    @abstractmethod
    def delete(
        self, *, tokens: TokenSet, remote_id: str, account: AccountRef | None = None
    ) -> None: ...

    # Capture
    @abstractmethod
    def fetch_activity(
        self, *, tokens: TokenSet, handle: str, cursor: str | None, limit: int = 100
    ) -> ActivityPage:
        """What happened on the account since ``cursor`` (None: from the beginning), oldest
        first, at most ``limit`` items, in the archive item schema."""

    @abstractmethod
    def fetch_profile(self, *, tokens: TokenSet, handle: str) -> Profile: ...

    def stream(
        self, *, tokens: TokenSet, handle: str, cursor: str | None, limit: int = 100
    ) -> Iterator[ActivityPage]:
        """Continuous capture (``capabilities.streaming``): an endless iterator of pages from
        ``cursor``, each with the cursor to store once its items are archived, as they arrive.

        The caller archives each page (and stores its cursor) before asking for the next, so a
        page's items may depend on what is archived. A page with no items and ``cursor`` None is
        a heartbeat: nothing happened, the stream is alive (yielded at least every few seconds,
        so the caller can stop cleanly). Raises :class:`StreamUnavailable` when the stream cannot
        be reached (the caller polls with :meth:`fetch_activity` meanwhile), the other
        :class:`ConnectorError` subclasses as :meth:`fetch_activity` does."""
        raise Unsupported(f"{self.label} offers no streaming API; its accounts are polled.")

    def fetch_media(self, *, tokens: TokenSet, media: MediaRef, max_bytes: int) -> bytes:
        """The bytes of one medium of a captured item (see :data:`MEDIA_KEY`), fetched with the
        network's client library or authenticated session. Raises :class:`MediaTooLarge` when
        it is (declared or found) larger than ``max_bytes``, without reading the rest;
        :class:`PermanentError` when it is gone (404); :class:`TransientError` or
        :class:`RateLimited` when still failing after the retry helper's attempts."""
        raise Unsupported(f"{self.label} does not fetch media.")

    def resolve_media(self, *, tokens: TokenSet, media: MediaRef) -> list[MediaRef]:
        """The media to fetch for ``media``: itself, unless it stands for an object whose media
        are only known by asking (a Graph post or Instagram media id: their signed CDN URLs
        change on every read, so they are not in the item's payload). An empty list: the
        object has no media. Errors as :meth:`fetch_media`."""
        return [media]

    def search(self, *, tokens: TokenSet, query: str, limit: int = 50) -> list[Mapping[str, Any]]:
        """Public items matching ``query`` (used by listening), in the item schema."""
        raise Unsupported(f"{self.label} does not offer search through its API.")

    def probe(self, *, tokens: TokenSet, account: AccountRef | None = None) -> CapabilityReport:
        """What the granted access allows for this account. The default narrows the declared
        capabilities by :attr:`scope_requirements` and the scopes granted, without a network
        call; connectors whose servers differ (Mastodon and compatibles) also call them."""
        allowed, missing = report_from_scopes(
            self.capabilities, self.scope_requirements, tokens.scopes
        )
        return CapabilityReport(allowed=tuple(allowed), missing=missing)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "network": cls.network,
            "label": cls.label,
            "training_only": cls.training_only,
            "capabilities": cls.capabilities.as_dict(),
        }


def raw_item(payload: bytes, **item: Any) -> dict[str, Any]:
    """An item that keeps the network's bytes exactly as received as its raw payload."""
    return {**item, "raw_payload_b64": base64.b64encode(payload).decode("ascii")}


def profile_item(profile: Profile, *, captured_at: dt.datetime) -> dict[str, Any]:
    """A profile snapshot item. Its remote id changes with the content, so an unchanged
    profile is a duplicate and a changed one is a new record."""
    body = {
        "handle": profile.handle,
        "display_name": profile.display_name,
        "bio": profile.bio,
        "url": profile.url,
        "avatar_url": profile.avatar_url,
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return {
        "remote_id": f"profile:{profile.remote_account_id or profile.handle}:{digest}",
        "kind": "profile_snapshot",
        "direction": "outbound",
        "author": profile.handle,
        "text": f"{profile.display_name}\n{profile.bio}".strip(),
        "network_timestamp": captured_at.isoformat(),
        "raw": dict(profile.raw) or body,
    }
