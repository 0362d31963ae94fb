"""The Bluesky connector (AT Protocol, ``atproto`` SDK).

Authentication: an app password is exchanged once for a session (``createSession``); only the
session's access and refresh JWTs are kept, in the credentials vault. Refresh uses
``refreshSession`` and the rotated tokens are stored again by the framework, so the SDK's own
silent refresh is switched off. Bluesky's OAuth (DPoP-bound tokens, PAR, client metadata at a
public HTTPS URL) is not supported yet: see docs/connectors.md.

Everything is read from and written to the account's own repository on its PDS
(``com.atproto.repo.*``), never through an AppView, so it works against any PDS.

Capture, driven by an opaque cursor (JSON):

1. **backfill**: ``listRecords`` over posts, reposts and the profile, a page at a time;
2. **live**: a bounded session on the repo firehose (``subscribeRepos``) from the stored
   ``seq``. When it cannot resume exactly (first connection, cursor outside the PDS's backfill
   window, a ``#sync`` of the repository) the repository's head revision is compared with the
   last one captured and, if it moved, the repository is reconciled against the archive;
3. **polling** when the firehose is unavailable or switched off: ``getLatestCommit``; when the
   head moved, a listing reconciled against the archive (new records, edits, and records that
   disappeared, which are captured as deletions). The archive is the state: the cursor stays a
   few bytes long whatever the size of the repository.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from atproto_client import Client, models  # type: ignore[import-untyped]
from atproto_client.client.session import Session  # type: ignore[import-untyped]
from atproto_client.utils import facet_detection  # type: ignore[import-untyped]
from atproto_core.car import CAR  # type: ignore[import-untyped]
from atproto_identity.resolver import IdResolver  # type: ignore[import-untyped]
from atproto_server.auth.jwt import get_jwt_payload  # type: ignore[import-untyped]

from vetline.connectors.base import (
    AccountRef,
    ActivityPage,
    AuthExpired,
    Capabilities,
    Connector,
    Media,
    MediaRef,
    PermanentError,
    Profile,
    PublishRequest,
    PublishResult,
    StreamUnavailable,
    TokenSet,
    TransientError,
    Unsupported,
)
from vetline.connectors.bluesky import mapping, selectors
from vetline.connectors.bluesky.firehose import FirehoseUnavailable, head_seq
from vetline.connectors.bluesky.firehose import Session as FirehoseSession
from vetline.connectors.bluesky.mapping import CAPTURED_COLLECTIONS, POST, PROFILE, AtUri, raw_cid
from vetline.connectors.bluesky.selectors import Head
from vetline.connectors.bluesky.transport import RetryingRequest, connector_error, retryable_only
from vetline.connectors.http import HttpClient, RetryPolicy, register_secret
from vetline.connectors.media import check_declared_size, too_large

logger = logging.getLogger(__name__)

NETWORK = "bluesky"
MAX_IMAGES = 4
LIST_PAGE = 100


class _SessionClient(Client):
    """The SDK client, minus its silent session refresh: a refreshed session must be stored
    (the refresh JWT rotates), which only the framework does. An expired access JWT surfaces
    as :class:`AuthExpired`, the framework refreshes, stores and retries."""

    def _should_refresh_session(self) -> bool:
        return False


@dataclass
class CaptureCursor:
    """Where capture stands. ``rev``: the repository revision captured up to (the anchor for
    reconciling); ``seq``: the firehose position."""

    phase: str = "backfill"
    col: int = 0
    page: str | None = None
    rev: str | None = None
    seq: int | None = None

    @classmethod
    def load(cls, cursor: str | None) -> CaptureCursor:
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            return cls(
                phase=str(data.get("phase", "backfill")),
                col=int(data.get("col", 0)),
                page=data.get("page"),
                rev=data.get("rev"),
                seq=None if data.get("seq") is None else int(data["seq"]),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise PermanentError("the stored Bluesky capture cursor is unreadable") from exc

    def dump(self) -> str:
        return json.dumps({"v": 1, **asdict(self)}, separators=(",", ":"), sort_keys=True)


class _Emitter:
    """Turns records and deletions into items, deciding from the archive (and what this page
    already emitted) whether a record is new, a new version (edit) or already archived."""

    def __init__(self, *, account_id: int | None, did: str, handle: str) -> None:
        self.account_id = account_id
        self.did = did
        self.handle = handle
        self.heads: dict[str, Head] = {}
        self.items: list[dict[str, Any]] = []

    def load(self, uris: Iterable[str]) -> None:
        missing = [u for u in uris if u not in self.heads]
        if missing and self.account_id is not None:
            self.heads.update(
                selectors.archived_heads(account_id=self.account_id, remote_ids=missing)
            )

    def record(self, uri: str, cid: str, value: Any, *, at: str | None = None) -> None:
        parsed = AtUri.parse(uri)
        if parsed.collection == PROFILE:
            self.items.append(
                mapping.record_item(
                    uri=uri, cid=cid, value=value, owner_did=self.did, owner_handle=self.handle
                )
            )
            return
        head = self.heads.get(uri)
        if head is not None and (cid in head.known_cids or (head.cid == cid and not head.deleted)):
            return  # this version is archived (a replay of the listing or of the firehose)
        item = mapping.record_item(
            uri=uri,
            cid=cid,
            value=value,
            owner_did=self.did,
            owner_handle=self.handle,
            edit=head is not None,
            at=at,
        )
        self.items.append(item)
        known = (head.known_cids if head else frozenset()) | {cid}
        self.heads[uri] = Head((head.version + 1) if head else 1, item["kind"], cid, known)

    def deletion(self, uri: str, *, at: str | None = None) -> None:
        head = self.heads.get(uri)
        if head is None or head.deleted:
            return  # never archived (nothing to mark) or already marked
        self.items.append(
            mapping.deletion_item(uri=uri, owner_did=self.did, owner_handle=self.handle, at=at)
        )
        self.heads[uri] = Head(head.version + 1, "deletion", "", head.known_cids)


class BlueskyConnector(Connector):
    network = NETWORK
    label = "Bluesky"
    default_scopes = ("atproto", "app-password")
    capabilities = Capabilities(
        publish_post=True,
        publish_reply=True,
        publish_media=True,
        delete=True,
        capture_own_posts=True,
        capture_replies=True,
        capture_mentions=True,
        capture_direct_messages=False,
        capture_edits=True,
        capture_deletions=True,
        capture_profile=True,
        streaming=True,
        oauth2=False,
        app_password=True,
        token_refresh=True,
        search=False,
        notes=(
            "Direct messages are not in the repository: they live in the chat.bsky service, "
            "reached only through the Bluesky AppView's chat proxy, so they cannot be captured "
            "from the PDS.",
            "Replies and mentions by others are captured from the firehose only, and only from "
            "repositories that firehose carries (the same PDS, or every PDS through a relay); "
            "backfill and polling read the account's own repository.",
            "Connected with an app password exchanged for a session; Bluesky's OAuth "
            "(DPoP-bound tokens) is not supported yet.",
            "Search needs the AppView (app.bsky.feed.searchPosts) and is not offered.",
            "Edits: Bluesky has no edit; a record replaced in place (putRecord) is captured as "
            "a new version.",
        ),
    )

    #: the SDK's client class (tests never need to replace it; kept for subclasses)
    client_class: ClassVar[type[Client]] = _SessionClient

    def __init__(
        self,
        *,
        config: Mapping[str, Any] | None = None,
        http: HttpClient | None = None,
    ) -> None:
        super().__init__(config=config)
        self.service_url = str(self.config.get("service_url") or "https://bsky.social").rstrip("/")
        self.plc_url = str(self.config.get("plc_url") or "https://plc.directory").rstrip("/")
        self.web_url = str(self.config.get("web_url") or "https://bsky.app").rstrip("/")
        self.firehose_url = str(self.config.get("firehose_url") or "")
        self.firehose_enabled = bool(self.config.get("firehose", True))
        self.firehose_idle_seconds = float(self.config.get("firehose_idle_seconds", 2.0))
        self.firehose_max_seconds = float(self.config.get("firehose_max_seconds", 10.0))
        # Streaming (the stream supervisor): a page is handed over once the firehose has been
        # quiet this long, and at the latest after this long on a busy firehose.
        self.stream_flush_seconds = float(self.config.get("stream_flush_seconds", 0.05))
        self.stream_max_batch_seconds = float(self.config.get("stream_max_batch_seconds", 2.0))
        self.http = http or HttpClient(
            policy=RetryPolicy(timeout_seconds=float(self.config.get("timeout_seconds", 30.0))),
            classify=retryable_only,
        )
        self._pds_cache: dict[str, str] = {}

    # --- Clients and identity -------------------------------------------------------------
    def _bare_client(self, base_url: str) -> Client:
        return self.client_class(base_url=base_url, request=RetryingRequest(self.http))

    def pds_for(self, did: str) -> str:
        """The PDS hosting ``did``, from its DID document (accounts move between PDSs; the
        DID document is where the protocol says they are)."""
        if did in self._pds_cache:
            return self._pds_cache[did]
        try:
            doc = IdResolver(plc_url=self.plc_url, timeout=10).did.resolve(did)
        except Exception as exc:  # the resolver raises httpx and its own errors
            raise TransientError(f"could not resolve {did}: {type(exc).__name__}") from exc
        endpoint = doc.get_pds_endpoint() if doc is not None else None
        if not endpoint:
            raise PermanentError(f"{did} has no PDS in its DID document")
        self._pds_cache[did] = endpoint.rstrip("/")
        return self._pds_cache[did]

    def _client(self, tokens: TokenSet) -> tuple[Client, str]:
        did = tokens.remote_account_id
        if not did.startswith("did:"):
            raise PermanentError("the connection has no Bluesky DID; reconnect the account")
        if tokens.expired(dt.datetime.now(dt.UTC), skew_seconds=0):
            raise AuthExpired("the Bluesky access token has expired")
        register_secret(tokens.access_token)
        register_secret(tokens.refresh_token)
        pds = self.pds_for(did)
        client = self._bare_client(pds)
        session = Session(
            tokens.remote_handle or did, did, tokens.access_token, tokens.refresh_token, pds
        )
        client.login(session_string=session.encode(), fetch_bsky_profile=False)
        return client, did

    @staticmethod
    def _tokens_from(session: Any) -> TokenSet:
        access, refresh = str(session.access_jwt), str(session.refresh_jwt)
        register_secret(access)
        register_secret(refresh)
        exp = get_jwt_payload(access).exp
        return TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_at=dt.datetime.fromtimestamp(exp, dt.UTC) if exp else None,
            scopes=BlueskyConnector.default_scopes,
            remote_account_id=str(session.did),
            remote_handle=str(session.handle),
        )

    # --- Authentication --------------------------------------------------------------------
    def authorization_url(
        self, *, redirect_uri: str, state: str, code_challenge: str, handle: str
    ) -> str:
        raise Unsupported(
            "Bluesky accounts are connected with an app password, not through OAuth yet."
        )

    def exchange_code(
        self,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        account: AccountRef | None = None,
    ) -> TokenSet:
        raise Unsupported(
            "Bluesky accounts are connected with an app password, not through OAuth yet."
        )

    def sign_in(
        self, *, identifier: str, app_password: str, account: AccountRef | None = None
    ) -> TokenSet:
        return self.create_session(identifier=identifier, app_password=app_password)

    def create_session(self, *, identifier: str, app_password: str) -> TokenSet:
        """Exchange an app password (never stored) for a session."""
        register_secret(app_password)
        client = self._bare_client(self.service_url)
        try:
            session = client.com.atproto.server.create_session(
                models.ComAtprotoServerCreateSession.Data(
                    identifier=identifier, password=app_password
                )
            )
        except Exception as exc:
            raise connector_error(exc, doing="sign-in") from None
        return self._tokens_from(session)

    def refresh(self, *, tokens: TokenSet) -> TokenSet:
        if not tokens.refresh_token:
            raise AuthExpired("no Bluesky refresh token; reconnect the account")
        register_secret(tokens.refresh_token)
        client = self._bare_client(self.service_url)
        try:
            session = client.com.atproto.server.refresh_session(
                headers={"Authorization": f"Bearer {tokens.refresh_token}"}
            )
        except Exception as exc:
            error = connector_error(exc, doing="session refresh")
            if isinstance(error, AuthExpired):
                # An expired or already-used refresh token cannot be refreshed again.
                raise AuthExpired(error.message) from None
            raise error from None
        return self._tokens_from(session)

    # --- Records ---------------------------------------------------------------------------
    def _call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise connector_error(exc, doing=doing) from None

    def _get_record(self, client: Client | None, uri: str) -> dict[str, Any]:
        parsed = AtUri.parse(uri)
        reader = client or self._bare_client(self.pds_for(parsed.repo))
        response = self._call(
            "reading a record",
            reader.invoke_query,
            "com.atproto.repo.getRecord",
            params=models.ComAtprotoRepoGetRecord.Params(
                repo=parsed.repo, collection=parsed.collection, rkey=parsed.rkey
            ),
        )
        content = response.content
        if not isinstance(content, dict):
            raise PermanentError("the PDS sent a record that is not JSON")
        return content

    def _maybe_record(self, client: Client, uri: str) -> dict[str, Any] | None:
        try:
            return self._get_record(client, uri)
        except PermanentError as exc:
            if "RecordNotFound" in exc.message:
                return None
            raise

    def _list_page(
        self, client: Client, did: str, collection: str, cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        response = self._call(
            "listing the repository",
            client.invoke_query,
            "com.atproto.repo.listRecords",
            params=models.ComAtprotoRepoListRecords.Params(
                repo=did, collection=collection, limit=max(1, min(limit, LIST_PAGE)), cursor=cursor
            ),
        )
        content = response.content if isinstance(response.content, dict) else {}
        records = [r for r in content.get("records", []) if isinstance(r, dict)]
        next_cursor = content.get("cursor")
        return records, next_cursor if isinstance(next_cursor, str) and records else None

    def _latest_rev(self, client: Client, did: str) -> str:
        response = self._call(
            "reading the repository head",
            client.com.atproto.sync.get_latest_commit,
            models.ComAtprotoSyncGetLatestCommit.Params(did=did),
        )
        return str(response.rev)

    # --- Publishing -----------------------------------------------------------------------
    def post_url(self, uri: str) -> str:
        parsed = AtUri.parse(uri)
        return f"{self.web_url}/profile/{parsed.repo}/post/{parsed.rkey}"

    def _post_record(self, client: Client, text: str) -> dict[str, Any]:
        record: dict[str, Any] = {
            "$type": POST,
            "text": text,
            "createdAt": dt.datetime.now(dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
        facets = facet_detection.detect_facets(text)  # links and hashtags, no network calls
        if facets:
            record["facets"] = [f.model_dump(by_alias=True, exclude_none=True) for f in facets]
        return record

    def publish(
        self, *, tokens: TokenSet, request: PublishRequest, account: AccountRef | None = None
    ) -> PublishResult:
        client, did = self._client(tokens)
        record = self._post_record(client, request.text)
        if request.reply_to_remote_id:
            parent = self._get_record(None, request.reply_to_remote_id)
            parent_ref = {"uri": parent["uri"], "cid": parent["cid"]}
            value = parent.get("value") if isinstance(parent.get("value"), dict) else {}
            root = (value.get("reply") or {}).get("root") if isinstance(value, dict) else None
            record["reply"] = {
                "root": root if isinstance(root, dict) and root.get("uri") else parent_ref,
                "parent": parent_ref,
            }
        if request.media:
            if len(request.media) > MAX_IMAGES:
                raise PermanentError(f"Bluesky takes at most {MAX_IMAGES} images per post")
            images = []
            for media in request.media:
                if not media.mime_type.startswith("image/"):
                    raise PermanentError("Bluesky posts embed images only (video not supported)")
                uploaded = self._call(
                    "uploading media",
                    client.com.atproto.repo.upload_blob,
                    media.content,
                    headers={"Content-Type": media.mime_type},
                )
                images.append(
                    {
                        "$type": "app.bsky.embed.images#image",
                        "alt": media.alt_text,
                        "image": uploaded.blob.model_dump(by_alias=True, exclude_none=True),
                    }
                )
            record["embed"] = {"$type": "app.bsky.embed.images", "images": images}
        created = self._call(
            "publishing",
            client.com.atproto.repo.create_record,
            models.ComAtprotoRepoCreateRecord.Data(repo=did, collection=POST, record=record),
        )
        return PublishResult(remote_id=str(created.uri), url=self.post_url(str(created.uri)))

    def edit(self, *, tokens: TokenSet, remote_id: str, text: str) -> PublishResult:
        """Replace the text of one of the account's posts in place (``putRecord`` on the same
        record key, guarded by the current CID). Bluesky has no edit: the reference PDS accepts
        the replacement, the Bluesky app shows it only where it re-reads the record. Capture
        archives it as a new version (``edit``) of the post."""
        client, did = self._client(tokens)
        parsed = AtUri.parse(remote_id)
        if parsed.repo != did or parsed.collection != POST:
            raise PermanentError("only the account's own posts can be edited")
        current = self._get_record(client, remote_id)
        value = dict(current.get("value") or {})
        value.update({k: v for k, v in self._post_record(client, text).items() if k in {"text"}})
        value.pop("facets", None)
        facets = facet_detection.detect_facets(text)
        if facets:
            value["facets"] = [f.model_dump(by_alias=True, exclude_none=True) for f in facets]
        put = self._call(
            "editing",
            client.com.atproto.repo.put_record,
            models.ComAtprotoRepoPutRecord.Data(
                repo=did,
                collection=POST,
                rkey=parsed.rkey,
                record=value,
                swap_record=current.get("cid"),
            ),
        )
        return PublishResult(remote_id=str(put.uri), url=self.post_url(str(put.uri)))

    def delete(
        self, *, tokens: TokenSet, remote_id: str, account: AccountRef | None = None
    ) -> None:
        client, did = self._client(tokens)
        parsed = AtUri.parse(remote_id)
        if parsed.repo != did:
            raise PermanentError("only the account's own records can be deleted")
        self._call(
            "deleting",
            client.com.atproto.repo.delete_record,
            models.ComAtprotoRepoDeleteRecord.Data(
                repo=did, collection=parsed.collection, rkey=parsed.rkey
            ),
        )

    # --- Profile ----------------------------------------------------------------------------
    def _profile_uri(self, did: str) -> str:
        return f"at://{did}/{PROFILE}/self"

    def update_profile(
        self,
        *,
        tokens: TokenSet,
        display_name: str | None = None,
        description: str | None = None,
        avatar: Media | None = None,
    ) -> str:
        """Change the profile record (``app.bsky.actor.profile/self``) in the repository,
        keeping its other fields (``avatar``: a new picture, uploaded as a blob); returns the
        new record's CID."""
        client, did = self._client(tokens)
        current = self._maybe_record(client, self._profile_uri(did))
        value: dict[str, Any] = dict((current or {}).get("value") or {"$type": PROFILE})
        if display_name is not None:
            value["displayName"] = display_name
        if description is not None:
            value["description"] = description
        if avatar is not None:
            if avatar.mime_type not in ("image/png", "image/jpeg"):
                raise PermanentError("a Bluesky avatar is a PNG or JPEG image")
            uploaded = self._call(
                "uploading the avatar",
                client.com.atproto.repo.upload_blob,
                avatar.content,
                headers={"Content-Type": avatar.mime_type},
            )
            value["avatar"] = uploaded.blob.model_dump(by_alias=True, exclude_none=True)
        put = self._call(
            "updating the profile",
            client.com.atproto.repo.put_record,
            models.ComAtprotoRepoPutRecord.Data(
                repo=did,
                collection=PROFILE,
                rkey="self",
                record=value,
                swap_record=current.get("cid") if current else None,
            ),
        )
        return str(put.cid)

    def fetch_profile(self, *, tokens: TokenSet, handle: str) -> Profile:
        client, did = self._client(tokens)
        described = self._call(
            "reading the repository",
            client.com.atproto.repo.describe_repo,
            models.ComAtprotoRepoDescribeRepo.Params(repo=did),
        )
        record = self._maybe_record(client, self._profile_uri(did)) or {}
        value = record.get("value") if isinstance(record.get("value"), dict) else {}
        assert isinstance(value, dict)
        avatar = ((value.get("avatar") or {}).get("ref") or {}).get("$link")
        pds = self.pds_for(did)
        return Profile(
            handle=str(described.handle),
            display_name=str(value.get("displayName") or ""),
            bio=str(value.get("description") or ""),
            url=f"{self.web_url}/profile/{described.handle}",
            avatar_url=(
                f"{pds}/xrpc/com.atproto.sync.getBlob?did={did}&cid={avatar}" if avatar else ""
            ),
            remote_account_id=did,
            raw=record,
        )

    # --- Capture ----------------------------------------------------------------------------
    def fetch_media(self, *, tokens: TokenSet, media: MediaRef, max_bytes: int) -> bytes:
        """A blob of a captured record, with ``com.atproto.sync.getBlob`` from the PDS of the
        repository holding it (the account's own session for its own blobs). The blob's
        declared size is checked before asking; the bytes are checked against the CID."""
        check_declared_size(media, max_bytes)
        if not media.owner.startswith("did:"):
            raise PermanentError("the blob's repository is not a DID")
        client, did = self._client(tokens)
        reader = client if media.owner == did else self._bare_client(self.pds_for(media.owner))
        data = self._call(
            "fetching a blob",
            reader.com.atproto.sync.get_blob,
            models.ComAtprotoSyncGetBlob.Params(did=media.owner, cid=media.ref),
        )
        if not isinstance(data, bytes):
            raise PermanentError("the PDS sent a blob that is not bytes")
        if len(data) > max_bytes:
            raise too_large(len(data), max_bytes)
        if raw_cid(data) != media.ref:
            raise PermanentError("the PDS sent bytes that do not match the blob's CID")
        return data

    def fetch_activity(
        self, *, tokens: TokenSet, handle: str, cursor: str | None, limit: int = 100
    ) -> ActivityPage:
        state = CaptureCursor.load(cursor)
        client, did = self._client(tokens)
        account = selectors.account_for(handle=handle, did=did)
        emitter = _Emitter(
            account_id=account.pk if account else None, did=did, handle=handle.lstrip("@")
        )
        if state.phase == "backfill":
            more = self._backfill(client, did, state, emitter, limit)
            return ActivityPage(items=emitter.items, cursor=state.dump(), more=more)
        if self.firehose_enabled:
            try:
                more = self._stream(client, did, state, emitter, limit)
                return ActivityPage(items=emitter.items, cursor=state.dump(), more=more)
            except FirehoseUnavailable as exc:
                logger.warning(
                    "bluesky.firehose.unavailable",
                    extra={"did": did, "reason": exc.message, "fallback": "polling"},
                )
                if exc.code == "FutureCursor":
                    state.seq = None  # the PDS was reset or replaced: start over live
                emitter.items.clear()
        more = self._poll(client, did, state, emitter, limit, force=False)
        return ActivityPage(items=emitter.items, cursor=state.dump(), more=more)

    def stream(
        self, *, tokens: TokenSet, handle: str, cursor: str | None, limit: int = 100
    ) -> Iterator[ActivityPage]:
        """Continuous capture from the repo firehose: the backfill first when it is not done,
        then one open ``subscribeRepos`` session from the stored ``seq``, handing over a page
        as soon as frames stop arriving for ``stream_flush_seconds`` (or ``limit`` operations
        are pending, or ``stream_max_batch_seconds`` passed on a busy firehose), and a
        heartbeat page whenever nothing happens. The same cursor as :meth:`fetch_activity`, so
        streaming and scheduled capture take turns on one account without losing or repeating
        anything."""
        if not self.firehose_enabled:
            raise Unsupported("the Bluesky firehose is switched off for this installation")
        state = CaptureCursor.load(cursor)
        client, did = self._client(tokens)
        account = selectors.account_for(handle=handle, did=did)
        bare = handle.lstrip("@")

        def emitter() -> _Emitter:
            return _Emitter(account_id=account.pk if account else None, did=did, handle=bare)

        while state.phase == "backfill":
            e = emitter()
            self._backfill(client, did, state, e, limit)
            yield ActivityPage(items=e.items, cursor=state.dump(), more=True)

        def reconcile_pages() -> Iterator[ActivityPage]:
            while True:
                e = emitter()
                more = self._poll(client, did, state, e, limit, force=True)
                yield ActivityPage(items=e.items, cursor=state.dump(), more=more)
                if not more:
                    return

        session = FirehoseSession(
            url=self._firehose_url(did),
            cursor=state.seq,
            idle_seconds=self.stream_flush_seconds,
            continuous=True,
        )
        exact = state.seq is not None
        ops: list[tuple[str, str, str, Any, str | None]] = []
        own_rev: str | None = None
        reconcile = False
        dirty = False  # frames seen since the last page (the seq moved)
        batch_started = time.monotonic()
        frames = session.frames()
        try:
            for kind, message in frames:
                if kind == "#connected":
                    if not exact and self._latest_rev(client, did) != state.rev:
                        # Live from now: what changed since the last revision captured is
                        # picked up by reconciling the repository once.
                        yield from reconcile_pages()
                    continue
                if kind != "#idle":
                    state.seq = int(message.seq)
                    dirty = True
                    if kind == "#sync" and message.did == did:
                        reconcile = True  # the repository was reset: its history is not here
                    elif kind == "#commit":
                        ops.extend(self._commit_ops(message, did))
                        if message.repo == did:
                            own_rev = str(message.rev)
                            if getattr(message, "too_big", False):
                                reconcile = True
                    busy = time.monotonic() - batch_started >= self.stream_max_batch_seconds
                    if len(ops) < limit and not busy:
                        continue
                elif not dirty:
                    yield ActivityPage(items=[], cursor=None)  # heartbeat
                    continue
                if "OutdatedCursor" in session.infos:
                    session.infos.clear()
                    reconcile = True
                e = emitter()
                e.load(uri for _, uri, _, _, _ in ops)
                for action, uri, cid, value, at in ops:
                    if action == "delete":
                        e.deletion(uri, at=at)
                    else:
                        e.record(uri, cid, value, at=at if action == "update" else None)
                if own_rev is not None and not reconcile:
                    state.rev = own_rev
                yield ActivityPage(items=e.items, cursor=state.dump(), more=reconcile)
                if reconcile:
                    yield from reconcile_pages()
                ops, own_rev, reconcile, dirty = [], None, False, False
                batch_started = time.monotonic()
        except FirehoseUnavailable as exc:
            raise StreamUnavailable(exc.message) from exc
        finally:
            frames.close()  # closes the websocket now, also when the caller stops early

    def _backfill(
        self, client: Client, did: str, state: CaptureCursor, emitter: _Emitter, limit: int
    ) -> bool:
        if state.rev is None:
            # The firehose position and the repository head before listing: the firehose
            # resumes from there, so nothing committed during or after the listing is missed.
            if self.firehose_enabled and state.seq is None:
                try:
                    state.seq = head_seq(self._firehose_url(did))
                except FirehoseUnavailable as exc:
                    logger.warning(
                        "bluesky.firehose.unavailable",
                        extra={"did": did, "reason": exc.message, "fallback": "reconcile"},
                    )
            state.rev = self._latest_rev(client, did)
        collection = CAPTURED_COLLECTIONS[state.col]
        records, next_page = self._list_page(client, did, collection, state.page, limit)
        emitter.load(str(r.get("uri", "")) for r in records)
        for r in records:
            emitter.record(str(r["uri"]), str(r["cid"]), r.get("value"))
        if next_page:
            state.page = next_page
        else:
            state.page = None
            state.col += 1
            if state.col >= len(CAPTURED_COLLECTIONS):
                state.phase, state.col = "live", 0
        return True

    def _firehose_url(self, did: str) -> str:
        if self.firehose_url:
            return self.firehose_url
        pds = self.pds_for(did)
        scheme = "wss" if pds.startswith("https") else "ws"
        return f"{scheme}{pds[pds.index(':') :]}/xrpc/com.atproto.sync.subscribeRepos"

    def _stream(
        self, client: Client, did: str, state: CaptureCursor, emitter: _Emitter, limit: int
    ) -> bool:
        session = FirehoseSession(
            url=self._firehose_url(did),
            cursor=state.seq,
            idle_seconds=self.firehose_idle_seconds,
            max_seconds=self.firehose_max_seconds,
        )
        reconcile = False
        head_at_connect: str | None = None
        exact = state.seq is not None
        ops: list[tuple[str, str, str, Any, str | None]] = []  # action, uri, cid, value, time
        own_rev: str | None = None
        more = False
        for kind, message in session.frames():
            if kind == "#connected":
                if not exact:
                    # Live from now: whatever changed since the last revision captured is
                    # picked up by reconciling the repository once.
                    head_at_connect = self._latest_rev(client, did)
                    reconcile = head_at_connect != state.rev
                continue
            state.seq = int(message.seq)
            if kind == "#sync" and message.did == did:
                reconcile = True  # the repository was reset: its history is not in the stream
            elif kind == "#commit":
                ops.extend(self._commit_ops(message, did))
                if message.repo == did:
                    own_rev = str(message.rev)
                    if getattr(message, "too_big", False):
                        reconcile = True
            if len(ops) >= limit:
                more = True
                break
        if "OutdatedCursor" in session.infos:
            reconcile = True
        emitter.load(uri for _, uri, _, _, _ in ops)
        for action, uri, cid, value, at in ops:
            if action == "delete":
                emitter.deletion(uri, at=at)
            else:
                emitter.record(uri, cid, value, at=at if action == "update" else None)
        if own_rev is not None:
            state.rev = own_rev
        elif head_at_connect is not None and not reconcile:
            state.rev = head_at_connect
        if reconcile:
            more = self._poll(client, did, state, emitter, limit, force=True) or more
        return more

    def _commit_ops(self, message: Any, did: str) -> list[tuple[str, str, str, Any, str | None]]:
        """The operations of one firehose commit that concern the account: every captured
        operation on its own repository, and others' posts that reply to, quote or mention it
        (and deletions of others' records, kept only if archived)."""
        own = message.repo == did
        wanted = [
            op
            for op in message.ops
            if op.path.split("/", 1)[0] in CAPTURED_COLLECTIONS
            and (own or op.path.startswith(POST + "/"))
        ]
        if not wanted:
            return []
        blocks = CAR.from_bytes(message.blocks).blocks if message.blocks else {}
        found: list[tuple[str, str, str, Any, str | None]] = []
        at = mapping.timestamp(str(message.time))
        for op in wanted:
            uri = f"at://{message.repo}/{op.path}"
            if op.action == "delete":
                found.append(("delete", uri, "", None, at))
                continue
            if op.cid is None:
                continue
            block = blocks.get(op.cid)
            value = mapping.cbor_to_json(block) if block is not None else None
            if not own and not (isinstance(value, dict) and mapping.concerns(value, did)):
                continue
            if value is None:
                continue  # a commit without its block: the next reconciliation gets it
            found.append((str(op.action), uri, str(op.cid), value, at))
        return found

    def _poll(
        self,
        client: Client,
        did: str,
        state: CaptureCursor,
        emitter: _Emitter,
        limit: int,
        *,
        force: bool,
    ) -> bool:
        head = self._latest_rev(client, did)
        if head == state.rev and not force:
            return False
        listed: list[dict[str, Any]] = []
        for collection in CAPTURED_COLLECTIONS:
            page: str | None = None
            while True:
                records, page = self._list_page(client, did, collection, page, LIST_PAGE)
                listed.extend(records)
                if not page:
                    break
        uris = {str(r.get("uri", "")) for r in listed}
        emitter.load(uris)
        for r in listed:
            emitter.record(str(r["uri"]), str(r["cid"]), r.get("value"))
        if emitter.account_id is not None:
            gone = selectors.live_record_ids(account_id=emitter.account_id, repo_did=did) - uris
            emitter.load(gone)
            for uri in sorted(gone):
                emitter.deletion(uri)
        if len(emitter.items) > limit:
            # Hand over a page; the next call lists again and skips what is archived by then.
            del emitter.items[limit:]
            return True
        state.rev = head
        return False
