"""Archive search plans: matches-first and index-walk pages give exactly the same rows in the same
order as the unpaged query, for any query, filters and page size, including when record ids do
not follow capture time, when a page stops at the work bound, and across the plan choice."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vetline.archive import search
from vetline.archive import search_backends as sb
from vetline.archive.search import QueryError, parse
from vetline.archive.search_actions import parse_filters
from vetline.archive.search_backends import Cursor, Plan, SearchFilters, search_page
from vetline.archive.tests.conftest import item
from vetline.core.context import RequestContext, use_context
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db

WORDS = ["alpha", "beta", "gamma", "rates", "ratio", "fees"]
WEIGHTS = [30, 12, 8, 6, 3, 1]  # alpha in most records, fees in few
DAY0 = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
# Capture days of the ingest batches, in ingest order: ids rise while capture times jump back
# and forth and tie, so id order and capture order disagree often.
BATCH_DAYS = [10, 3, 7, 7, 1, 12, 5, 12, 2, 9, 4, 6]
PLANS = (Plan.MATCHES_FIRST, Plan.INDEX_WALK, Plan.AUTO)


@pytest.fixture
def corpus(ingest: Callable[..., Any], world: Any) -> dict[str, Any]:
    from vetline.archive import actions
    from vetline.archive.retention_actions import place_legal_hold

    rng = random.Random(5)
    accounts = [world.corporate, world.other, world.employee_account]
    n = 0
    for batch, day in enumerate(BATCH_DAYS):
        when = DAY0 + dt.timedelta(days=day)
        with mock.patch.object(actions.timezone, "now", return_value=when):
            for account in accounts:
                items = []
                for _ in range(rng.randint(3, 7)):
                    n += 1
                    words = rng.choices(WORDS, WEIGHTS, k=rng.randint(1, 5))
                    items.append(
                        item(
                            f"i{n}",
                            text=" ".join(words),
                            kind=rng.choice(["post", "reply"]),
                            direction=rng.choice(["inbound", "outbound"]),
                            network_timestamp=(when - dt.timedelta(days=batch % 3)).isoformat(),
                        )
                    )
                if batch and rng.random() < 0.5:  # an edit of an earlier item: a new version
                    items.append(item(f"i{n - 4}", kind="edit", text="gamma edited fees"))
                ingest(items, account=account)
    with use_context(RequestContext(channel="test")):
        officer = world.people[Role.COMPLIANCE_OFFICER]
        place_legal_hold(actor=officer, matter_name="whole", accounts=[world.other])
        place_legal_hold(
            actor=officer,
            matter_name="narrow",
            accounts=[world.corporate],
            date_from=(DAY0 + dt.timedelta(days=5)).date(),
            date_to=(DAY0 + dt.timedelta(days=9)).date(),
            query="ratio",
        )
    return {"accounts": [a.pk for a in accounts], "person": world.people[Role.EMPLOYEE].pk}


def _reference(query: str, filters: SearchFilters) -> list[int]:
    return list(sb.search_queryset(parse(query), filters).values_list("id", flat=True))


def _all_pages(
    query: str, filters: SearchFilters, *, limit: int, plan: Plan
) -> tuple[list[int], list[sb.Page]]:
    node = parse(query)
    after: Cursor | None = None
    ids: list[int] = []
    pages: list[sb.Page] = []
    for _ in range(1000):
        result = search_page(node, filters, after=after, limit=limit, plan=plan)
        pages.append(result)
        ids += [r.pk for r in result.items]
        if result.next_cursor is None:
            return ids, pages
        after = result.next_cursor
    raise AssertionError("pagination did not end")


QUERY_PARTS = st.lists(
    st.sampled_from([*WORDS, "ra*", "al*", '"alpha beta"', "OR", "NOT", "(", ")", "nothing"]),
    min_size=1,
    max_size=5,
).map(" ".join)


@st.composite
def filter_params(draw: st.DrawFn, accounts: list[int], person: int) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if draw(st.booleans()):
        params["account"] = draw(st.sampled_from(accounts))
    if draw(st.integers(0, 4)) == 0:
        params["person"] = person
    if draw(st.booleans()):
        params["kind"] = draw(st.sampled_from(["post", "reply", "edit"]))
    if draw(st.integers(0, 3)) == 0:
        params["direction"] = draw(st.sampled_from(["inbound", "outbound"]))
    days = sorted(draw(st.lists(st.integers(0, 13), min_size=2, max_size=2)))
    if draw(st.booleans()):
        params["since"] = (DAY0 + dt.timedelta(days=days[0])).date().isoformat()
    if draw(st.booleans()):
        params["until"] = (DAY0 + dt.timedelta(days=days[1])).date().isoformat()
    if draw(st.integers(0, 3)) == 0:
        params["on_hold"] = "1"
    return params


def test_every_plan_pages_exactly_like_the_unpaged_query(corpus: dict[str, Any]) -> None:
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        query=QUERY_PARTS,
        params=filter_params(corpus["accounts"], corpus["person"]),
        limit=st.sampled_from([1, 2, 3, 5, 8, 50]),
    )
    def check(query: str, params: dict[str, Any], limit: int) -> None:
        try:
            node = parse(query)
        except QueryError:
            return
        if node is None:
            return
        filters = parse_filters(params)
        expected = _reference(query, filters)
        for plan in PLANS:
            got, pages = _all_pages(query, filters, limit=limit, plan=plan)
            assert got == expected, (plan, query, params, limit)
            for p in pages[:-1]:  # a page short of the limit says so, and has a cursor
                assert len(p.items) == limit or p.partial

    check()


def test_plans_agree_when_ids_run_against_capture_time(corpus: dict[str, Any]) -> None:
    """The walk reads matches only in the span of ids walked so far; records captured earlier
    but stored later widen that span (a second, bounded read). Smallest pages walk in the
    smallest batches, so every batch boundary is crossed."""
    filters = SearchFilters()
    for query in ("alpha", "fees", "ratio OR fees", "gamma NOT alpha"):
        expected = _reference(query, filters)
        assert len(expected) > 3
        for limit in (1, 2, 7):
            got, _ = _all_pages(query, filters, limit=limit, plan=Plan.INDEX_WALK)
            assert got == expected


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the walk is SQLite's plan")
def test_a_walk_stops_at_its_work_bound_and_the_next_page_continues(
    corpus: dict[str, Any],
) -> None:
    filters = SearchFilters(account_id=corpus["accounts"][0])
    expected = _reference("fees OR ratio", filters)
    with mock.patch.object(sb, "WALK_BUDGET", 5):
        got, pages = _all_pages("fees OR ratio", filters, limit=3, plan=Plan.INDEX_WALK)
    assert got == expected
    partial = [p for p in pages if p.partial]
    assert partial and all(p.next_cursor is not None for p in partial)
    assert any(len(p.items) < 3 for p in partial)


def test_the_cheaper_plan_is_chosen_by_how_many_records_match(corpus: dict[str, Any]) -> None:
    """SQLite counts matches up to the cap; PostgreSQL asks its planner for an estimate."""
    records = sb.ArchivedRecord.objects.count()
    assert sb.matches_cap(50, 10_000_000) == 10_099  # sqrt(51 x 10M x 600 / 3000)
    assert sb.matches_cap(50, 10_000_000, "postgresql") == 71_414  # x 3000 / 300
    assert sb.matches_cap(50, 1000) == sb.MIN_MATCHES_CAP
    common, rare = parse("alpha"), parse("fees")
    assert common is not None and rare is not None
    with mock.patch.object(sb, "MIN_MATCHES_CAP", 10):
        cap = sb.matches_cap(50, records, connection.vendor)
        if connection.vendor == "sqlite":
            assert len(_reference("alpha", SearchFilters())) >= cap
            assert len(_reference("fees", SearchFilters())) < cap
        else:  # a test table has no statistics: give the planner's estimates
            estimates = {"'alpha'": 10_000, "'fees'": 3}
            estimate = mock.patch.object(
                sb, "_estimated_matches", side_effect=lambda n: estimates[search.to_tsquery(n)]
            )
            estimate.start()
        try:
            assert sb.choose_plan(common) == Plan.INDEX_WALK
            assert sb.choose_plan(rare) == Plan.MATCHES_FIRST
            assert search_page(common, SearchFilters()).plan == Plan.INDEX_WALK
            assert search_page(rare, SearchFilters()).plan == Plan.MATCHES_FIRST
        finally:
            if connection.vendor != "sqlite":
                estimate.stop()
    assert search_page(None, SearchFilters()).plan == Plan.SQL


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")
def test_postgresql_estimates_and_walks_without_bitmap_scans(corpus: dict[str, Any]) -> None:
    node = parse("alpha")
    assert node is not None
    with connection.cursor() as cur:
        cur.execute("ANALYZE archive_archivedrecord")
    assert sb._estimated_matches(node) > 10
    seen: list[str] = []
    original = sb.page

    def spy(*args: Any, **kw: Any) -> sb.Page:
        with connection.cursor() as cur:
            cur.execute("SHOW enable_bitmapscan")
            seen.append(cur.fetchone()[0])
        return original(*args, **kw)

    with mock.patch.object(sb, "page", spy):
        search_page(node, SearchFilters(), plan=Plan.INDEX_WALK)
        search_page(node, SearchFilters(), plan=Plan.MATCHES_FIRST)
    assert seen == ["off", "on"]
    with connection.cursor() as cur:
        cur.execute("SHOW enable_bitmapscan")
        assert cur.fetchone()[0] == "on"


def test_partial_pages_through_the_api_and_the_page(
    corpus: dict[str, Any], world: Any, api: Any, login: Any
) -> None:
    officer = world.people[Role.COMPLIANCE_OFFICER]
    with (
        mock.patch.object(sb, "WALK_BUDGET", 1),
        mock.patch.object(sb, "MIN_MATCHES_CAP", 1),
        mock.patch.object(
            sb, "WALK_AND_MATCH_COST_NS", dict.fromkeys(("sqlite", "postgresql"), (1, 10**9))
        ),
        mock.patch.object(sb, "FIRST_WALK_BATCH_FACTOR", 1),
    ):
        r = api(officer)("GET", "/api/archive/search?q=fees+NOT+gamma&limit=2")
        html = login(officer).get("/archive/search/", {"q": "fees NOT gamma"}).content.decode()
    body = r.json()
    if connection.vendor == "sqlite":
        assert body["partial"] is True and body["next"]
        assert 'id="search-partial"' in html and 'id="next-page"' in html
    else:
        assert body["partial"] is False
