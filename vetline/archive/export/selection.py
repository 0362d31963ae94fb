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
from vetline.core.http import MAX_DB_ID

MAX_EXPLICIT_IDS = 10_000
MAX_QUERY_CHARS = 500


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
        ids = (self.account_id,) if self.account_id is not None else ()
        if any(not 0 < i <= MAX_DB_ID for i in (*ids, *self.record_ids)):
            raise ValidationFailed("That is not a record or account id.", field="record_ids")

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


@dataclass(frozen=True)
class SearchSelection:
    """The records an archive search finds: the query language and filters of the search page
    (see ``vetline.archive.search``), all results rather than one page."""

    query: str = ""
    filters: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "search"

    def __post_init__(self) -> None:
        from vetline.archive.search import QueryError, parse
        from vetline.archive.search_actions import parse_filters

        if len(self.query) > MAX_QUERY_CHARS:
            raise ValidationFailed(
                f"A query is at most {MAX_QUERY_CHARS} characters.", field="query"
            )
        try:
            node = parse(self.query)
            filters = parse_filters(self.filters)
        except QueryError as exc:
            raise ValidationFailed(str(exc), field="query") from exc
        if node is None and not filters.as_dict():
            raise ValidationFailed(
                "A search export needs a query or a filter: the whole archive is not a search.",
                field="query",
            )

    def queryset(self) -> QuerySet[ArchivedRecord]:
        from vetline.archive.search import parse
        from vetline.archive.search_actions import parse_filters
        from vetline.archive.search_backends import search_queryset

        found = search_queryset(parse(self.query), parse_filters(self.filters))
        return ArchivedRecord.objects.filter(pk__in=found.order_by().values("pk"))

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "query": self.query, "filters": dict(self.filters)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSelection:
        filters = data.get("filters") or {}
        if not isinstance(filters, Mapping):
            raise ValidationFailed(
                "Search filters are a mapping of name to value.", field="filters"
            )
        return cls(query=str(data.get("query") or ""), filters=dict(filters))


@dataclass(frozen=True)
class HoldSelection:
    """Every record a legal hold covers (its custodians, date range and query), whether or not
    the hold is still active: a released hold's matter may still be produced."""

    hold_id: int
    kind: str = "hold"

    def __post_init__(self) -> None:
        from vetline.archive.models_retention import LegalHold

        if (
            not 0 < self.hold_id <= MAX_DB_ID
            or not LegalHold.objects.filter(pk=self.hold_id).exists()
        ):
            raise ValidationFailed("There is no such legal hold.", field="hold_id")

    def queryset(self) -> QuerySet[ArchivedRecord]:
        from vetline.archive.models_retention import LegalHold
        from vetline.archive.retention_selectors import records_under_hold

        return records_under_hold(
            ArchivedRecord.objects.all(), holds=LegalHold.objects.filter(pk=self.hold_id)
        )

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "hold_id": self.hold_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HoldSelection:
        try:
            hold_id = int(data.get("hold_id") or 0)
        except (TypeError, ValueError) as exc:
            raise ValidationFailed("A legal hold id is a number.", field="hold_id") from exc
        return cls(hold_id=hold_id)


_KINDS: dict[str, Callable[[Mapping[str, Any]], Selection]] = {
    "records": RecordSelection.from_dict,
    "search": SearchSelection.from_dict,
    "hold": HoldSelection.from_dict,
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


def selection_from_input(data: Mapping[str, Any]) -> Selection:
    """The selection a form, the API or the CLI asked for: a legal hold (``hold_id``), a search
    (``query`` / ``search_filters``) or records (account, dates, conversation, ids). Asking for
    two kinds at once is an error rather than a silent choice."""
    hold = data.get("hold_id")
    query = str(data.get("query") or "")
    search_filters = data.get("search_filters") or {}
    records = any(
        data.get(k) not in (None, "", [], ())
        for k in ("account_id", "date_from", "date_to", "conversation_id", "record_ids")
    )
    asked = [
        name
        for name, on in (
            ("a legal hold", hold),
            ("a search", query or search_filters),
            ("records", records),
        )
        if on
    ]
    if len(asked) > 1:
        raise ValidationFailed(f"Export one thing at a time: you chose {' and '.join(asked)}.")
    if hold:
        return HoldSelection.from_dict({"hold_id": hold})
    if query or search_filters:
        return SearchSelection.from_dict({"query": query, "filters": search_filters})
    return RecordSelection.from_dict(data)
