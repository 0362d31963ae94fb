"""Filtering and exporting the audit trail."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q, QuerySet
from django.utils import timezone

from vetline.audit.models import AuditEvent

EXPORT_COLUMNS = [
    "id",
    "occurred_at",
    "action",
    "actor_id",
    "actor_name",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
    "ip",
    "user_agent",
    "request_id",
    "channel",
]


@dataclass(frozen=True)
class AuditFilter:
    person: str = ""  # id, or part of the frozen actor name / e-mail
    action: str = ""  # exact name or dotted prefix ("accounts." or "accounts.assignment")
    object_type: str = ""
    object_id: str = ""
    date_from: date | None = None
    date_to: date | None = None


def filter_events(f: AuditFilter) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.all()
    if f.person:
        if f.person.isdigit():
            qs = qs.filter(actor_id=int(f.person))
        else:
            qs = qs.filter(actor_name__icontains=f.person)
    if f.action:
        qs = qs.filter(Q(action=f.action) | Q(action__startswith=f.action.rstrip(".") + "."))
    if f.object_type:
        qs = qs.filter(object_type=f.object_type)
    if f.object_id:
        qs = qs.filter(object_id=f.object_id)
    tz = timezone.get_current_timezone()
    if f.date_from:
        qs = qs.filter(occurred_at__gte=datetime.combine(f.date_from, time.min, tzinfo=tz))
    if f.date_to:
        end = datetime.combine(f.date_to + timedelta(days=1), time.min, tzinfo=tz)
        qs = qs.filter(occurred_at__lt=end)
    return qs.order_by("-occurred_at", "-id")


def _row(e: AuditEvent) -> list[str]:
    return [
        str(e.pk),
        e.occurred_at.isoformat(),
        e.action,
        str(e.actor_id or ""),
        e.actor_name,
        e.object_type,
        e.object_id,
        e.object_repr,
        json.dumps(e.before, cls=DjangoJSONEncoder, sort_keys=True) if e.before is not None else "",
        json.dumps(e.after, cls=DjangoJSONEncoder, sort_keys=True) if e.after is not None else "",
        e.ip or "",
        e.user_agent,
        e.request_id,
        e.channel,
    ]


def _safe_cell(value: str) -> str:
    # Spreadsheet formula injection: a cell that starts with = + - @ is shown as text.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export_csv(events: Iterable[AuditEvent]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_COLUMNS)
    for e in events:
        writer.writerow([_safe_cell(v) for v in _row(e)])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate(0)
    yield buf.getvalue()


def export_json(events: Iterable[AuditEvent]) -> Iterator[str]:
    """A JSON array streamed one event at a time."""
    yield "[\n"
    first = True
    for e in events:
        item = {
            "id": e.pk,
            "occurred_at": e.occurred_at.isoformat(),
            "action": e.action,
            "actor_id": e.actor_id,
            "actor_name": e.actor_name,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "object_repr": e.object_repr,
            "before": e.before,
            "after": e.after,
            "ip": e.ip,
            "user_agent": e.user_agent,
            "request_id": e.request_id,
            "channel": e.channel,
        }
        yield ("" if first else ",\n") + json.dumps(item, cls=DjangoJSONEncoder, sort_keys=True)
        first = False
    yield "\n]\n"
