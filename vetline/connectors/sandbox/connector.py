"""The sandbox network's connector: a real plugin (declared under the ``vetline.connectors``
entry point group like any other), speaking to the local sandbox storage instead of the
internet. Its OAuth flow approves at once: it is a training network."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django.core import signing
from django.urls import reverse
from django.utils import timezone

from vetline.connectors.base import (
    AccountRef,
    ActivityPage,
    AuthExpired,
    AuthRevoked,
    Capabilities,
    Connector,
    PermanentError,
    Profile,
    PublishRequest,
    PublishResult,
    TokenSet,
    raw_item,
)
from vetline.connectors.sandbox import network as net
from vetline.connectors.sandbox.models import PostKind, SandboxAccount, SandboxEvent, SandboxPost

_CODE_SALT = "vetline.sandbox.oauth-code"
CODE_MAX_AGE_SECONDS = 600
NETWORK = "sandbox"


class SandboxConnector(Connector):
    network = NETWORK
    label = "Sandbox (training)"
    training_only = True
    default_scopes = net.SCOPES
    scope_requirements = {
        "publish_post": ("write",),
        "publish_reply": ("write",),
        "publish_media": ("write",),
        "delete": ("write",),
        "capture_own_posts": ("read",),
        "capture_replies": ("read",),
        "capture_direct_messages": ("direct_messages",),
        "capture_edits": ("read",),
        "capture_deletions": ("read",),
        "capture_profile": ("read",),
        "search": ("read",),
    }
    capabilities = Capabilities(
        publish_post=True,
        publish_reply=True,
        publish_media=True,
        delete=True,
        capture_own_posts=True,
        capture_replies=True,
        capture_mentions=False,
        capture_direct_messages=True,
        capture_edits=True,
        capture_deletions=True,
        capture_profile=True,
        streaming=False,
        oauth2=True,
        app_password=True,
        token_refresh=True,
        search=True,
        notes=(
            "Training network stored in Vetline's own database; never contacts the internet.",
            "Mentions are not simulated.",
            "Both ways of connecting are offered for practice: OAuth (approved at once) and an "
            "app password (any one is accepted), as Bluesky accounts are connected.",
        ),
    )

    # --- Authentication ---------------------------------------------------------------------
    def authorization_url(
        self, *, redirect_uri: str, state: str, code_challenge: str, handle: str
    ) -> str:
        code = signing.dumps({"h": handle, "c": code_challenge}, salt=_CODE_SALT)
        sep = "&" if "?" in redirect_uri else "?"
        return f"{redirect_uri}{sep}{urlencode({'code': code, 'state': state})}"

    def exchange_code(
        self,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        account: AccountRef | None = None,
    ) -> TokenSet:
        try:
            data = signing.loads(code, salt=_CODE_SALT, max_age=CODE_MAX_AGE_SECONDS)
        except signing.BadSignature as exc:
            raise PermanentError("invalid or expired authorization code") from exc
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if challenge != data.get("c"):
            raise PermanentError("PKCE verification failed")
        return self._grant(net.ensure_account(str(data["h"])))

    def sign_in(
        self, *, identifier: str, app_password: str, account: AccountRef | None = None
    ) -> TokenSet:
        """The app-password flow, for practice: any app password is accepted, the identifier is
        the sandbox handle signed in as."""
        if not app_password.strip():
            raise PermanentError("an app password is required")
        remote = net.ensure_account(identifier.strip().lstrip("@"))
        return self._grant(remote)

    def _grant(self, remote: SandboxAccount) -> TokenSet:
        access, refresh, expires = net.issue_tokens(remote)
        return TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_at=expires,
            scopes=net.SCOPES,
            remote_account_id=f"sbx-account-{remote.pk}",
            remote_handle=remote.handle,
        )

    def refresh(self, *, tokens: TokenSet) -> TokenSet:
        remote = net.account_for_refresh_token(tokens.refresh_token)
        if remote is None or remote.grant_revoked:
            raise AuthRevoked("the sandbox refused the refresh token: access was revoked")
        return self._grant(remote)

    def _account(self, tokens: TokenSet, handle: str | None = None) -> SandboxAccount:
        account = net.account_for_access_token(tokens.access_token)
        if account is None or account.grant_revoked:
            raise AuthRevoked("the sandbox refused the access token: access was revoked")
        if account.token_expires_at is not None and account.token_expires_at <= timezone.now():
            raise AuthExpired("the sandbox access token has expired")
        if handle is not None and account.handle != handle:
            raise PermanentError("the token belongs to another sandbox account")
        return account

    # --- Publishing ---------------------------------------------------------------------------
    def publish(
        self, *, tokens: TokenSet, request: PublishRequest, account: AccountRef | None = None
    ) -> PublishResult:
        me = self._account(tokens, account.bare_handle if account else None)
        parent = None
        if request.reply_to_remote_id:
            parent = SandboxPost.objects.filter(remote_id=request.reply_to_remote_id).first()
            if parent is None or parent.deleted_at is not None:
                raise PermanentError("the post replied to does not exist on the sandbox")
        post = net.create_post(
            timeline=parent.timeline if parent else me,
            author=me,
            text=request.text,
            kind=PostKind.REPLY if parent else PostKind.POST,
            in_reply_to=parent,
            media_count=len(request.media),
        )
        return PublishResult(remote_id=post.remote_id, url=self.post_url(post))

    @staticmethod
    def post_url(post: SandboxPost) -> str:
        return reverse("connectors:sandbox_post", args=[post.remote_id])

    def delete(
        self, *, tokens: TokenSet, remote_id: str, account: AccountRef | None = None
    ) -> None:
        me = self._account(tokens, account.bare_handle if account else None)
        post = SandboxPost.objects.filter(remote_id=remote_id, author=me).first()
        if post is None:
            raise PermanentError("no such post of this account on the sandbox")
        if post.deleted_at is None:
            net.delete_post(post=post)

    # --- Capture ------------------------------------------------------------------------------
    def fetch_activity(
        self, *, tokens: TokenSet, handle: str, cursor: str | None, limit: int = 100
    ) -> ActivityPage:
        account = self._account(tokens, handle)
        after = int(cursor) if cursor and cursor.isdigit() else 0
        events = list(
            SandboxEvent.objects.filter(timeline=account, id__gt=after).order_by("id")[: limit + 1]
        )
        more = len(events) > limit
        events = events[:limit]
        items = [to_item(bytes(e.payload), owner=account.handle) for e in events]
        return ActivityPage(items=items, cursor=str(events[-1].pk) if events else cursor, more=more)

    def fetch_profile(self, *, tokens: TokenSet, handle: str) -> Profile:
        account = self._account(tokens, handle)
        body = net.profile_body(account)
        return Profile(
            handle=account.handle,
            display_name=account.display_name,
            bio=account.bio,
            remote_account_id=body["id"],
            raw=body,
        )

    def search(self, *, tokens: TokenSet, query: str, limit: int = 50) -> list[Mapping[str, Any]]:
        self._account(tokens)
        posts = SandboxPost.objects.filter(
            text__icontains=query, deleted_at__isnull=True
        ).select_related("author", "timeline", "in_reply_to")[:limit]
        found: list[Mapping[str, Any]] = []
        for p in posts:
            item = to_item(
                json.dumps(net._post_body(p, "create", p.created_at)).encode(),
                owner=p.timeline.handle,
            )
            if not isinstance(item, bytes):
                found.append(item)
        return found


def to_item(payload: bytes, *, owner: str) -> dict[str, Any] | bytes:
    """One sandbox API payload as an archive item. The payload is kept byte for byte; what
    cannot be read is handed over as bytes, for the archive to quarantine with its reason."""
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return payload
    if not isinstance(body, dict):
        return payload
    try:
        return _item_from_body(body, payload, owner)
    except (KeyError, TypeError, AttributeError):
        return payload


def _item_from_body(body: dict[str, Any], payload: bytes, owner: str) -> dict[str, Any]:
    kind_of_event = body["type"]
    at = body.get("at")
    if kind_of_event == "profile":
        return raw_item(
            payload,
            remote_id=f"profile:{body['id']}:{hashlib.sha256(payload).hexdigest()[:16]}",
            kind="profile_snapshot",
            direction="outbound",
            author=body["handle"],
            text=f"{body.get('display_name', '')}\n{body.get('bio', '')}".strip(),
            network_timestamp=at,
        )
    author = body["author"]["handle"]
    outbound = author == owner
    post_kind = body["kind"]
    if kind_of_event == "edit":
        kind = "edit"
    elif kind_of_event == "delete":
        kind = "deletion"
    elif post_kind == "direct_message":
        kind = "direct_message"
    elif post_kind == "reply":
        kind = "reply"
    else:
        kind = "post"
    item: dict[str, Any] = {
        "remote_id": body["id"],
        "kind": kind,
        "direction": "outbound" if outbound else "inbound",
        "author": author,
        "text": body.get("text") or "",
        "network_timestamp": at,
    }
    if body.get("in_reply_to"):
        item["parent_remote_id"] = body["in_reply_to"]
        item["thread_id"] = body["in_reply_to"]
    if post_kind == "direct_message":
        item["participants"] = sorted({owner, author})
        item["conversation_id"] = f"dm:{'|'.join(item['participants'])}"
    return raw_item(payload, **item)
