"""What an export contains: a *selection* turns a request into a queryset of archived records.

Selections are plain, JSON-serialisable values (they are stored with the export job and in the
audit event) with a ``kind``. Other modules (search, legal holds) plug in their own kinds with
:func:`register_selection_kind`; the export machinery only needs :meth:`Selection.queryset`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db.models import Q, QuerySet

from vetline.archive.models import ArchivedRecord
from vetline.core.errors import ValidationFailed

MAX_EXPLICIT_IDS = 10_000


class Selection(Protocol):
    """Anything that names a set of archived records."""

    @property
    def kind(self) -> str: ...

    def queryset(self) -> QuerySet[ArchivedRecord]: ...

    def as_dict(self) -> dict[str, Any]: ...


def _date(value: Any, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValidationFailed(f"{name} must be a date (YYYY-MM-DD).", field=name) from exc


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


@dataclass(frozen=True)
class RecordSelection:
    """Records of one account (optionally within a date range, inclusive, UTC), of one
    conversation, or an explicit list of record ids. Criteria given together all apply.

    The date range applies to the network timestamp, or to the capture time for records the
    network did not date."""

    account_id: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    conversation_id: str | None = None
    record_ids: tuple[int, ...] = field(default=())
    kind: str = "records"

    def __post_init__(self) -> None:
        if self.account_id is None and not self.conversation_id and not self.record_ids:
            raise ValidationFailed(
                "Choose an account, a conversation or records to export.", field="account_id"
            )
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValidationFailed("The start date is after the end date.", field="date_from")
        if len(self.record_ids) > MAX_EXPLICIT_IDS:
            raise ValidationFailed(
                f"At most {MAX_EXPLICIT_IDS} explicit record ids.", field="record_ids"
            )

    def queryset(self) -> QuerySet[ArchivedRecord]:
        qs = ArchivedRecord.objects.all()
        if self.account_id is not None:
            qs = qs.filter(account_id=self.account_id)
        if self.conversation_id:
            qs = qs.filter(conversation_id=self.conversation_id)
        if self.record_ids:
            qs = qs.filter(pk__in=self.record_ids)
        if self.date_from is not None:
            start = _start_of(self.date_from)
            qs = qs.filter(
                Q(network_timestamp__gte=start)
                | Q(network_timestamp__isnull=True, captured_at__gte=start)
            )
        if self.date_to is not None:
            end = _start_of(self.date_to + dt.timedelta(days=1))
            qs = qs.filter(
                Q(network_timestamp__lt=end)
                | Q(network_timestamp__isnull=True, captured_at__lt=end)
            )
        return qs

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "account_id": self.account_id,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "conversation_id": self.conversation_id or None,
            "record_ids": list(self.record_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordSelection:
        account = data.get("account_id")
        ids = data.get("record_ids") or ()
        try:
            record_ids = tuple(int(i) for i in ids)
            account_id = int(account) if account not in (None, "") else None
        except (TypeError, ValueError) as exc:
            raise ValidationFailed("Record and account ids are integers.") from exc
        return cls(
            account_id=account_id,
            date_from=_date(data.get("date_from"), "date_from"),
            date_to=_date(data.get("date_to"), "date_to"),
            conversation_id=(str(data.get("conversation_id") or "") or None),
            record_ids=record_ids,
        )


_KINDS: dict[str, Callable[[Mapping[str, Any]], Selection]] = {
    "records": RecordSelection.from_dict,
}


def register_selection_kind(kind: str, factory: Callable[[Mapping[str, Any]], Selection]) -> None:
    """Let another module (search, legal hold) offer its selections to the export."""
    _KINDS[kind] = factory


def selection_from_dict(data: Mapping[str, Any]) -> Selection:
    kind = str(data.get("kind") or "records")
    factory = _KINDS.get(kind)
    if factory is None:
        raise ValidationFailed(f"Unknown selection kind {kind!r}.", field="kind")
    return factory(data)
