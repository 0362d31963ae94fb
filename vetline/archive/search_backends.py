"""Running a parsed search against the database: SQLite FTS5 (the embedded default) or
PostgreSQL full-text search, plus the structured filters and keyset pagination.

Results are ordered by (captured_at, id), newest first, and paged by keyset: a page is "the next
N rows after this (captured_at, id)", never an OFFSET, and nothing is scored, so the cost of a
page does not grow with the number of matches ranked (there is no ranking) nor with its depth.
The index objects themselves are created by migrations 0004_search and 0007_search_tsvector.

How a page of a full-text search is found (:func:`choose_plan` picks the cheaper):

* **matches first** (:attr:`Plan.MATCHES_FIRST`): read every full-text match, keep those that
  pass the filters, sort them. Its cost grows with the number of matches in the whole archive,
  so it is used only when a bounded count shows there are few.
* **index walk** (:attr:`Plan.INDEX_WALK`): read the records of the account and capture range
  in page order (through the (account_id, captured_at, id) or (captured_at, id) index), and
  stream the full-text matches in descending rowid order beside them, reading only the matches
  whose rowid lies in the span of record ids walked so far. Ids follow capture time closely
  (records are appended as they are captured), so that span is narrow and FTS5 streams it
  without sorting; where they do not (two captures committed out of order), the span is wider
  and the result the same. The other filters are tested, in SQL, only on the records whose
  words match. Its cost grows with the records walked until the page is full, not with the
  size of the archive, and is bounded by :data:`WALK_BUDGET`. On PostgreSQL the walk is the
  same query with bitmap scans off (see :func:`_without_bitmap_scans`), testing the stored
  vector of each row the index gives in page order.

Both plans return exactly the same rows in the same order (tests/test_search_plans.py).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, Final

from django.db import connection, transaction
from django.db.models import BooleanField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from vetline.accounts.models import AccountKind, SocialAccount
from vetline.archive.models import ArchivedRecord, ScreeningVerdict
from vetline.archive.search import Node, QueryError, to_fts5, to_tsquery

FTS_TABLE: Final = "archive_record_fts"
# The stored tsvector of migration 0007_search_tsvector (kept by a trigger, GIN-indexed).
PG_TSVECTOR: Final = '"archive_archivedrecord"."search_tsv"'
MAX_PAGE: Final = 200
DEFAULT_PAGE: Final = 50

# Plan choice. For a page of ``limit`` rows over ``n`` records, walking costs about
# (limit + 1) * n / matches records walked, reading the matches first about ``matches``: the two
# cost the same at sqrt((limit + 1) * n * walk_cost / match_cost) matches; fewer, and reading
# them all is cheaper. Measured costs, in nanoseconds:
# - SQLite: a record walked ~600 (the index only: its id goes into Python beside the FTS5
#   rowids), a match read, looked up and sorted ~3,000;
# - PostgreSQL: a record walked ~3,000 (a heap fetch and the stored vector tested), a match read
#   from the GIN index into a bitmap ~300.
WALK_AND_MATCH_COST_NS: Final = {"sqlite": (600, 3000), "postgresql": (3000, 300)}
MIN_MATCHES_CAP: Final = 1000
# Most records (plus full-text matches) an index walk reads for one page. If the page is not
# full by then, it is returned short with a cursor to continue from: a page costs at most this
# much, however rare the words are among the records the filters select.
WALK_BUDGET: Final = 200_000
FIRST_WALK_BATCH_FACTOR: Final = 4  # first batch: 4 x (limit + 1) records, then doubling
MAX_WALK_BATCH: Final = 8192
MATCH_BATCH: Final = 2048
PASSING_CHUNK: Final = 900  # ids a query tests at once (below SQLite's parameter limit)


class Plan(StrEnum):
    """How a page is found; AUTO chooses by counting matches up to a bound."""

    AUTO = "auto"
    MATCHES_FIRST = "matches_first"
    INDEX_WALK = "index_walk"
    SQL = "sql"  # no words: one SQL query, the database's planner decides


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """The structured part of a search. Dates bound the capture time (the order of results):
    ``since`` inclusive, ``until`` exclusive. ``person``: the personal-for-business accounts the
    person owns (the accounts a legal hold on that person covers). ``on_hold``: records an
    active legal hold covers, exactly as disposal sees them (retention_selectors)."""

    account_id: int | None = None
    person_id: int | None = None
    network: str = ""
    kind: str = ""
    direction: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    verdict: str = ""
    flagged: bool = False
    handle: str = ""
    on_hold: bool = False

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
    """One page of results. ``partial``: the page stopped at the work bound before it was full;
    ``next_cursor`` continues the search from the last record checked."""

    items: list[ArchivedRecord]
    next_cursor: Cursor | None
    plan: Plan = Plan.SQL
    partial: bool = False
    records_checked: int = 0


def _fts5_match(node: Node) -> str:
    # Only the text column: the author is a filter, and PostgreSQL indexes the text only.
    return "{text} : " + to_fts5(node)


def _full_text(node: Node) -> Q | RawSQL:
    # The SQL is constant; the compiled query is a bound parameter.
    if connection.vendor == "postgresql":
        return RawSQL(  # noqa: S611
            f"{PG_TSVECTOR} @@ to_tsquery('simple'::regconfig, %s)",
            [to_tsquery(node)],
            output_field=BooleanField(),
        )
    if connection.vendor == "sqlite":
        return RawSQL(  # noqa: S611
            f'"archive_archivedrecord"."id" IN (SELECT rowid FROM {FTS_TABLE}'  # noqa: S608
            f" WHERE {FTS_TABLE} MATCH %s)",
            [_fts5_match(node)],
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


def _accounts(qs: QuerySet[ArchivedRecord], ids: set[int]) -> QuerySet[ArchivedRecord]:
    """Restrict to some accounts. One account is an equality the (account_id, captured_at, id)
    index serves in page order. For several, SQLite would read every row of each account
    through that index and sort them all before the first row of a page (and test each against
    every other filter first); the unary "+" keeps it on the (captured_at, id) index instead,
    which streams rows in page order and stops when the page is full."""
    if not ids:
        return qs.none()
    ordered = sorted(ids)
    if len(ordered) == 1:
        return qs.filter(account_id=ordered[0])
    if connection.vendor == "sqlite":
        marks = ", ".join(["%s"] * len(ordered))
        return qs.filter(
            RawSQL(  # noqa: S611 (placeholders only)
                f'+"archive_archivedrecord"."account_id" IN ({marks})',
                ordered,
                output_field=BooleanField(),
            )
        )
    return qs.filter(account_id__in=ordered)


def person_accounts(person_id: int) -> set[int]:
    """The personal-for-business accounts a person owns: what a search by person, like a legal
    hold on that person, covers (their activity on corporate accounts is not mapped to them)."""
    return set(
        SocialAccount.objects.filter(owner_id=person_id, kind=AccountKind.EMPLOYEE).values_list(
            "id", flat=True
        )
    )


def _on_hold(qs: QuerySet[ArchivedRecord]) -> QuerySet[ArchivedRecord]:
    """Records an active legal hold covers, as SQL derived from the active holds: their
    custodian accounts (an indexed condition), then, only for holds with a date range or a
    query, that condition on the record or (holds apply per item) on another version of it.
    The same rule as :func:`retention_selectors.records_under_hold`, which disposal obeys."""
    from vetline.archive.retention_selectors import (
        active_holds,
        hold_custodian_accounts,
        hold_filter,
    )

    custodians: set[int] = set()
    whole: set[int] = set()  # accounts a hold without date range or query covers entirely
    narrowed: Q | None = None  # what the holds with a date range or a query cover
    for hold in active_holds():
        accounts = hold_custodian_accounts(hold)
        if not accounts:
            continue
        custodians |= accounts
        if hold.date_from is None and hold.date_to is None and not hold.query:
            whole |= accounts
        else:
            narrowed = hold_filter(hold) if narrowed is None else narrowed | hold_filter(hold)
    qs = _accounts(qs, custodians)
    if narrowed is None:
        return qs
    condition = narrowed | Q(_other_version_matches(narrowed))
    if whole:
        condition = Q(account_id__in=sorted(whole)) | condition
    return qs.filter(condition)


def _other_version_matches(condition: Q) -> Coalesce:
    """True for a record when some version of its item (itself included) matches ``condition``:
    retention_selectors.held_items, written as a scalar subquery so that it is evaluated for
    each record the page reads (one probe of the unique (account, network, remote_id, version)
    index). As EXISTS beside an OR, PostgreSQL may instead hash every record the condition
    matches in the whole archive before returning the first row."""
    versions = (
        ArchivedRecord.objects.filter(
            account_id=OuterRef("account_id"),
            network=OuterRef("network"),
            remote_id=OuterRef("remote_id"),
        )
        .filter(condition)
        .order_by()
        .annotate(found=Value(True, output_field=BooleanField()))
        .values("found")[:1]
    )
    return Coalesce(Subquery(versions), Value(False), output_field=BooleanField())


def search_queryset(node: Node | None, filters: SearchFilters) -> QuerySet[ArchivedRecord]:
    """Every record matching the query and the filters, newest capture first. Unpaged: take
    pages with :func:`search_page`."""
    qs = ArchivedRecord.objects.select_related("account").defer("raw_payload")
    if node is not None:
        qs = qs.filter(_full_text(node))
    return _filtered(qs, filters)


def _filtered(qs: QuerySet[ArchivedRecord], filters: SearchFilters) -> QuerySet[ArchivedRecord]:
    f = filters
    if f.account_id is not None:
        qs = qs.filter(account_id=f.account_id)
    if f.person_id is not None:
        qs = _accounts(qs, person_accounts(f.person_id))
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
    if f.on_hold:
        qs = _on_hold(qs)
    return qs.order_by("-captured_at", "-id")


# --- Pages -------------------------------------------------------------------------------------


def _after(qs: QuerySet[ArchivedRecord], after: Cursor | None) -> QuerySet[ArchivedRecord]:
    if after is None:
        return qs
    return qs.filter(
        Q(captured_at__lt=after.captured_at) | Q(captured_at=after.captured_at, id__lt=after.id)
    )


def page(qs: QuerySet[ArchivedRecord], *, after: Cursor | None, limit: int = DEFAULT_PAGE) -> Page:
    """One keyset page of ``qs`` (ordered by -captured_at, -id) after ``after``: one query for
    the ids, whose plan the database chooses, and one for the rows."""
    limit = max(1, min(limit, MAX_PAGE))
    # Ids first, then the rows: joined to the accounts (select_related), the query would let
    # SQLite start from the accounts table and sort, where the ids alone stream from an index.
    ids = list(_after(qs, after).values_list("id", flat=True)[: limit + 1])
    more = len(ids) > limit
    rows = _records(ids[:limit])
    last = rows[-1] if rows else None
    cursor = Cursor(last.captured_at, last.pk) if more and last is not None else None
    return Page(rows, cursor, Plan.SQL, records_checked=len(rows))


def _records(ids: list[int]) -> list[ArchivedRecord]:
    """The records of ``ids``, in that order, with their accounts (for the page)."""
    if not ids:
        return []
    by_id = search_queryset(None, SearchFilters()).in_bulk(ids)
    return [by_id[i] for i in ids]


def matches_cap(limit: int, records: int, vendor: str = "sqlite") -> int:
    """Below this many full-text matches, reading them all beats walking the index."""
    walk, match = WALK_AND_MATCH_COST_NS[vendor]
    return max(MIN_MATCHES_CAP, math.isqrt((limit + 1) * records * walk // match))


def choose_plan(node: Node, *, limit: int = DEFAULT_PAGE) -> Plan:
    """MATCHES_FIRST when the words match fewer records than :func:`matches_cap`, else
    INDEX_WALK. SQLite counts the matches, but never beyond the cap, so choosing costs at most
    that many rowids read; PostgreSQL takes its planner's estimate (its statistics of the
    words), because its GIN index can only be read whole."""
    vendor = connection.vendor
    with connection.cursor() as cur:
        cur.execute("SELECT max(id) FROM archive_archivedrecord")
        cap = matches_cap(limit, cur.fetchone()[0] or 0, vendor)
    found = _estimated_matches(node) if vendor == "postgresql" else _counted_matches(node, cap)
    return Plan.MATCHES_FIRST if found < cap else Plan.INDEX_WALK


def _counted_matches(node: Node, cap: int) -> int:
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s"  # noqa: S608
            " LIMIT %s)",
            [_fts5_match(node), cap],
        )
        return int(cur.fetchone()[0])


def _estimated_matches(node: Node) -> int:
    with connection.cursor() as cur:
        cur.execute(
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM archive_archivedrecord"  # noqa: S608
            f" WHERE {PG_TSVECTOR} @@ to_tsquery('simple'::regconfig, %s)",
            [to_tsquery(node)],
        )
        plan = cur.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


@contextmanager
def _without_bitmap_scans() -> Iterator[None]:
    """PostgreSQL's INDEX_WALK: the same query, with bitmap scans off for it, so the GIN index
    (which can only be read whole, into a bitmap) is not used and the planner walks the
    (account_id, captured_at, id) or (captured_at, id) index in page order, testing each row's
    stored vector, and stops when the page is full. Left to itself it often reads every match
    of a common word (hundreds of thousands) because it expects random heap reads to cost more
    than they do."""
    # In a savepoint: on an error, rolling it back restores the setting too.
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT current_setting('enable_bitmapscan')")
        before = cur.fetchone()[0]
        cur.execute("SELECT set_config('enable_bitmapscan', 'off', true)")
        yield
        cur.execute("SELECT set_config('enable_bitmapscan', %s, true)", [before])


def search_page(
    node: Node | None,
    filters: SearchFilters,
    *,
    after: Cursor | None = None,
    limit: int = DEFAULT_PAGE,
    plan: Plan = Plan.AUTO,
) -> Page:
    """One keyset page of a search, by the plan given or (AUTO) the cheaper one."""
    limit = max(1, min(limit, MAX_PAGE))
    if node is None:
        return page(search_queryset(node, filters), after=after, limit=limit)
    if plan is Plan.AUTO or plan is Plan.SQL:
        plan = choose_plan(node, limit=limit)
    if plan is Plan.INDEX_WALK and connection.vendor == "sqlite":
        return _walk_page(node, filters, after=after, limit=limit)
    if plan is Plan.INDEX_WALK:
        with _without_bitmap_scans():
            result = page(search_queryset(node, filters), after=after, limit=limit)
    else:
        result = page(search_queryset(node, filters), after=after, limit=limit)
    result.plan = plan
    return result


def _walk_filters(filters: SearchFilters) -> tuple[SearchFilters, SearchFilters | None]:
    """Split the filters for the walk: what the keyset indexes serve in page order (one account,
    the capture range), walked; and the rest, tested only on the records whose words match
    (None when there is no rest). An expensive filter (on hold, a participant, the latest
    verdict) then costs a test per full-text hit, not per record walked."""
    account_id = filters.account_id
    if account_id is None and filters.person_id is not None:
        owned = person_accounts(filters.person_id)
        if len(owned) == 1:
            account_id = next(iter(owned))
    walked = SearchFilters(account_id=account_id, since=filters.since, until=filters.until)
    rest = replace(filters, account_id=None, since=None, until=None)
    if filters.person_id is not None and account_id is not None and filters.account_id is None:
        rest = replace(rest, person_id=None)  # the walk is on the person's only account
    return walked, (None if rest == SearchFilters() else rest)


def _walk_page(node: Node, filters: SearchFilters, *, after: Cursor | None, limit: int) -> Page:
    """The INDEX_WALK plan (SQLite): see the module docstring."""
    walked, rest = _walk_filters(filters)
    residual = None if rest is None else _filtered(ArchivedRecord.objects.all(), rest).order_by()
    if residual is not None and residual.query.is_empty():  # say, on hold but no active hold
        return Page([], None, Plan.INDEX_WALK)
    structured = _after(_filtered(ArchivedRecord.objects.all(), walked), after)
    walk_sql, walk_params = structured.values_list("id").query.sql_with_params()
    match = _fts5_match(node)
    stream_sql = (
        f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s AND rowid <= %s"  # noqa: S608
        " ORDER BY rowid DESC"
    )
    span_sql = (
        f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s"  # noqa: S608
        " AND rowid > %s AND rowid <= %s"
    )
    matched: set[int] = set()  # every match with rowid in [lowest, top] has been read
    top = lowest = 0
    hits: list[int] = []
    work = checked = 0
    last_checked = 0
    partial = False
    batch = FIRST_WALK_BATCH_FACTOR * (limit + 1)
    with connection.cursor() as walk, connection.cursor() as stream:
        walk.execute(walk_sql, walk_params)
        started = False
        while len(hits) <= limit:
            rows = walk.fetchmany(batch)
            if not rows:
                break
            batch = min(batch * 2, MAX_WALK_BATCH)
            ids = [r[0] for r in rows]
            lo, hi = min(ids), max(ids)
            if not started:
                started = True
                top, lowest = hi, hi + 1
                stream.execute(stream_sql, [match, top])
            elif hi > top:  # a record captured earlier than one walked before, but stored later
                with connection.cursor() as cur:
                    cur.execute(span_sql, [match, top, hi])
                    found = [r[0] for r in cur.fetchall()]
                matched.update(found)
                work += len(found)
                top = hi
            while lowest > lo:
                got = stream.fetchmany(MATCH_BATCH)
                if not got:
                    lowest = 0  # every match up to ``top`` has been read
                    break
                matched.update(r[0] for r in got)
                lowest = got[-1][0]
                work += len(got)
            found_here = [i for i in ids if i in matched]
            if residual is not None and found_here:
                passing = _passing(found_here, residual)
                work += len(found_here)
                found_here = [i for i in found_here if i in passing]
            hits += found_here[: limit + 1 - len(hits)]
            checked += len(ids)
            work += len(ids)
            if len(hits) <= limit and work >= WALK_BUDGET:
                partial, last_checked = True, ids[-1]
                break
    more = len(hits) > limit
    hits = hits[:limit]
    items = _records(hits)
    cursor: Cursor | None = None
    if more:
        cursor = Cursor(items[-1].captured_at, items[-1].pk)
    elif partial:
        at = ArchivedRecord.objects.filter(pk=last_checked).values_list("captured_at", flat=True)
        cursor = Cursor(at.get(), last_checked)
    return Page(items, cursor, Plan.INDEX_WALK, partial=partial, records_checked=checked)


def _passing(ids: list[int], residual: QuerySet[ArchivedRecord]) -> set[int]:
    """Those of ``ids`` that ``residual`` (the filters the walk does not serve) selects."""
    passing: set[int] = set()
    for start in range(0, len(ids), PASSING_CHUNK):
        chunk = ids[start : start + PASSING_CHUNK]
        passing.update(residual.filter(pk__in=chunk).values_list("id", flat=True))
    return passing
