"""The sandbox network's server side: what its "API" does to its storage. Called by the
sandbox connector (as the network would be over HTTP), by the simulator of customers and by the
demo loader. Every change appends a :class:`SandboxEvent` with the payload the API serves."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from vetline.connectors.sandbox.models import PostKind, SandboxAccount, SandboxEvent, SandboxPost

TOKEN_LIFETIME = dt.timedelta(hours=1)
SCOPES = ("read", "write", "direct_messages")


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def ensure_account(
    handle: str, *, display_name: str = "", customer: bool = False
) -> SandboxAccount:
    account, _ = SandboxAccount.objects.get_or_create(
        handle=handle, defaults={"display_name": display_name or handle, "is_customer": customer}
    )
    return account


def _event(timeline: SandboxAccount, body: dict[str, Any], when: dt.datetime) -> SandboxEvent:
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return SandboxEvent.objects.create(timeline=timeline, payload=payload, created_at=when)


def _author(account: SandboxAccount) -> dict[str, Any]:
    return {"handle": account.handle, "display_name": account.display_name}


def _post_body(post: SandboxPost, event_type: str, when: dt.datetime) -> dict[str, Any]:
    return {
        "type": event_type,
        "id": post.remote_id,
        "kind": post.kind,
        "timeline": post.timeline.handle,
        "author": _author(post.author),
        "text": post.text if event_type != "delete" else "",
        "in_reply_to": post.in_reply_to.remote_id if post.in_reply_to else None,
        "media_count": post.media_count,
        "at": when.isoformat(),
    }


def _next_remote_id() -> str:
    top = SandboxPost.objects.aggregate(m=Max("id"))["m"] or 0
    return f"sbx-{top + 1}-{secrets.token_hex(3)}"


def create_post(
    *,
    timeline: SandboxAccount,
    author: SandboxAccount,
    text: str,
    kind: PostKind = PostKind.POST,
    in_reply_to: SandboxPost | None = None,
    media_count: int = 0,
    when: dt.datetime | None = None,
) -> SandboxPost:
    when = when or timezone.now()
    with transaction.atomic():
        post = SandboxPost.objects.create(
            timeline=timeline,
            remote_id=_next_remote_id(),
            kind=kind,
            author=author,
            text=text,
            in_reply_to=in_reply_to,
            media_count=media_count,
            created_at=when,
        )
        _event(timeline, _post_body(post, "create", when), when)
    return post


def edit_post(*, post: SandboxPost, text: str, when: dt.datetime | None = None) -> SandboxPost:
    when = when or timezone.now()
    with transaction.atomic():
        post.text = text
        post.edited_at = when
        post.save(update_fields=["text", "edited_at"])
        _event(post.timeline, _post_body(post, "edit", when), when)
    return post


def delete_post(*, post: SandboxPost, when: dt.datetime | None = None) -> None:
    when = when or timezone.now()
    with transaction.atomic():
        post.deleted_at = when
        post.save(update_fields=["deleted_at"])
        _event(post.timeline, _post_body(post, "delete", when), when)


def update_profile(
    *, account: SandboxAccount, display_name: str, bio: str, when: dt.datetime | None = None
) -> None:
    when = when or timezone.now()
    with transaction.atomic():
        account.display_name = display_name
        account.bio = bio
        account.save(update_fields=["display_name", "bio"])
        _event(account, {"type": "profile", **profile_body(account), "at": when.isoformat()}, when)


def profile_body(account: SandboxAccount) -> dict[str, Any]:
    return {
        "handle": account.handle,
        "display_name": account.display_name,
        "bio": account.bio,
        "id": f"sbx-account-{account.pk}",
    }


def inject_raw_event(*, timeline: SandboxAccount, payload: bytes) -> SandboxEvent:
    """A drill: the network sends bytes exactly as given (broken, huge or hostile)."""
    return SandboxEvent.objects.create(timeline=timeline, payload=payload)


# --- OAuth ------------------------------------------------------------------------------------


def issue_tokens(account: SandboxAccount) -> tuple[str, str, dt.datetime]:
    access, refresh = "sbx_at_" + secrets.token_urlsafe(24), "sbx_rt_" + secrets.token_urlsafe(24)
    expires = timezone.now() + TOKEN_LIFETIME
    account.access_token_sha256 = _sha(access)
    account.refresh_token_sha256 = _sha(refresh)
    account.token_expires_at = expires
    account.grant_revoked = False
    account.scopes = list(SCOPES)
    account.save(
        update_fields=[
            "access_token_sha256",
            "refresh_token_sha256",
            "token_expires_at",
            "grant_revoked",
            "scopes",
        ]
    )
    return access, refresh, expires


def account_for_access_token(token: str) -> SandboxAccount | None:
    if not token:
        return None
    return SandboxAccount.objects.filter(access_token_sha256=_sha(token)).first()


def account_for_refresh_token(token: str) -> SandboxAccount | None:
    if not token:
        return None
    return SandboxAccount.objects.filter(refresh_token_sha256=_sha(token)).first()


def revoke_grant(account: SandboxAccount) -> None:
    """The account holder withdraws Vetline's access on the network's side (a drill)."""
    account.grant_revoked = True
    account.save(update_fields=["grant_revoked"])


def expire_token(account: SandboxAccount) -> None:
    account.token_expires_at = timezone.now() - dt.timedelta(seconds=1)
    account.save(update_fields=["token_expires_at"])
