"""Writing audit events. Every action in every app calls ``record`` inside its transaction."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.db import models, transaction

from vetline.audit.models import AuditEvent
from vetline.audit.selectors import AuditFilter, filter_events
from vetline.core.context import current_context

if TYPE_CHECKING:
    from vetline.identity.models import Person


def _valid_ip(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


def record(
    *,
    action: str,
    actor: Person | None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_name: str = "",
) -> AuditEvent:
    """Append one audit event. Must run inside the caller's transaction, so that the event and
    the change it describes commit or roll back together."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"audit event {action!r} written outside a transaction")
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:300]
    ctx = current_context()
    if actor is not None and not actor.pk:
        actor = None
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_name=actor_name or (f"{actor.full_name} <{actor.email}>" if actor else "system"),
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:300],
        before=before,
        after=after,
        ip=_valid_ip(ctx.ip),
        user_agent=ctx.user_agent[:512],
        request_id=ctx.request_id,
        channel=ctx.channel,
    )


def export_events(*, actor: Person, f: AuditFilter, fmt: str) -> Iterator[AuditEvent]:
    """Check the right to export, record the export itself, and return the events to stream."""
    from vetline.identity.permissions import require
    from vetline.identity.roles import Perm

    require(actor, Perm.AUDIT_EXPORT)
    with transaction.atomic():
        record(
            action="audit.export",
            actor=actor,
            object_type="audit.auditevent",
            after={"format": fmt, "filter": dataclasses.asdict(f)},
        )
    return filter_events(f).iterator(chunk_size=2000)
