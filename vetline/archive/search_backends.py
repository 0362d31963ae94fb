"""Running a parsed search against the database: SQLite FTS5 (the embedded default) or
PostgreSQL full-text search, plus the structured filters and keyset pagination.

Results are ordered by (captured_at, id), newest first, and paged by keyset: a page is "the next
N rows after this (captured_at, id)", never an OFFSET, and nothing is scored, so the cost of a
page does not grow with the number of matches ranked (there is no ranking) nor with its depth.
The index objects themselves are created by migration 0004_search.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any, Final

from django.db import connection
from django.db.models import BooleanField, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL

from vetline.archive.models import ArchivedRecord, ScreeningVerdict
from vetline.archive.search import Node, QueryError, to_fts5, to_tsquery

FTS_TABLE: Final = "archive_record_fts"
# Must stay identical to the expression of the GIN index in migration 0004_search.
PG_TSVECTOR: Final = (
    "to_tsvector('simple'::regconfig, "
    "regexp_replace(\"archive_archivedrecord\".\"text\", '[^[:alnum:]]+', ' ', 'g'))"
)
MAX_PAGE: Final = 200
DEFAULT_PAGE: Final = 50


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """The structured part of a search. Dates bound the capture time (the order of results):
    ``since`` inclusive, ``until`` exclusive."""

    account_id: int | None = None
    network: str = ""
    kind: str = ""
    direction: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    verdict: str = ""
    flagged: bool = False
    handle: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Only the filters that are set, JSON-ready (for audit events and saved searches)."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if value in (None, "", False):
                continue
            out[key] = value.isoformat() if isinstance(value, dt.datetime) else value
        return out


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ends: the (captured_at, id) of its last row. Opaque to clients."""

    captured_at: dt.datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.captured_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            if len(token) > 200:
                raise ValueError("too long")
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            at_raw, _, id_raw = raw.partition("|")
            at = dt.datetime.fromisoformat(at_raw)
            record_id = int(id_raw)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise QueryError("The page cursor is not valid; start the search again.") from exc
        if at.tzinfo is None or not 0 < record_id < 2**63:
            raise QueryError("The page cursor is not valid; start the search again.")
        return cls(at, record_id)


@dataclass(slots=True)
class Page:
    items: list[ArchivedRecord]
    next_cursor: Cursor | None


def _full_text(node: Node) -> Q | RawSQL:
    # The SQL is constant; the compiled query is a bound parameter.
    if connection.vendor == "postgresql":
        return RawSQL(  # noqa: S611
            f"{PG_TSVECTOR} @@ to_tsquery('simple'::regconfig, %s)",
            [to_tsquery(node)],
            output_field=BooleanField(),
        )
    if connection.vendor == "sqlite":
        # Only the text column: the author is a filter, and PostgreSQL indexes the text only.
        return RawSQL(  # noqa: S611
            f'"archive_archivedrecord"."id" IN (SELECT rowid FROM {FTS_TABLE}'  # noqa: S608
            f" WHERE {FTS_TABLE} MATCH %s)",
            ["{text} : " + to_fts5(node)],
            output_field=BooleanField(),
        )
    raise QueryError(f"Full-text search is not available on {connection.vendor}.")


def _participant(handle: str) -> RawSQL:
    if connection.vendor == "postgresql":
        return RawSQL(
            '"archive_archivedrecord"."participants" @> %s::jsonb',
            [json.dumps([handle])],
            output_field=BooleanField(),
        )
    return RawSQL(
        'EXISTS (SELECT 1 FROM json_each("archive_archivedrecord"."participants")'
        " WHERE value = %s)",
        [handle],
        output_field=BooleanField(),
    )


def latest_verdict() -> Subquery:
    return Subquery(
        ScreeningVerdict.objects.filter(record=OuterRef("pk"))
        .order_by("-screened_at", "-id")
        .values("verdict")[:1]
    )


def search_queryset(node: Node | None, filters: SearchFilters) -> QuerySet[ArchivedRecord]:
    """Every record matching the query and the filters, newest capture first. Unpaged: take
    pages with :func:`page`."""
    qs = ArchivedRecord.objects.select_related("account").defer("raw_payload")
    if node is not None:
        qs = qs.filter(_full_text(node))
    f = filters
    if f.account_id is not None:
        qs = qs.filter(account_id=f.account_id)
    if f.network:
        qs = qs.filter(network=f.network)
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.direction:
        qs = qs.filter(direction=f.direction)
    if f.since is not None:
        qs = qs.filter(captured_at__gte=f.since)
    if f.until is not None:
        qs = qs.filter(captured_at__lt=f.until)
    if f.handle:
        qs = qs.filter(Q(author_handle__iexact=f.handle) | Q(_participant(f.handle)))
    if f.verdict or f.flagged:
        qs = qs.annotate(latest_verdict=latest_verdict())
        if f.verdict:
            qs = qs.filter(latest_verdict=f.verdict)
        if f.flagged:
            qs = qs.filter(latest_verdict__isnull=False).exclude(latest_verdict="pass")
    return qs.order_by("-captured_at", "-id")


def page(qs: QuerySet[ArchivedRecord], *, after: Cursor | None, limit: int = DEFAULT_PAGE) -> Page:
    """One keyset page of ``qs`` (ordered by -captured_at, -id) after ``after``."""
    limit = max(1, min(limit, MAX_PAGE))
    if after is not None:
        qs = qs.filter(
            Q(captured_at__lt=after.captured_at) | Q(captured_at=after.captured_at, id__lt=after.id)
        )
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    cursor = Cursor(last.captured_at, last.pk) if more and last is not None else None
    return Page(rows, cursor)
