"""Archive search filters added for legal holds and people: "on hold" finds exactly the records
disposal treats as held (any custodian, date range and query; every version of a held item),
"person" the personal-for-business accounts a person owns; both through the API, the page and
saved searches. And a documented disposal takes a record's words out of the index."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vetline.archive.search import parse
from vetline.archive.search_actions import parse_filters
from vetline.archive.search_backends import Plan, SearchFilters, search_page, search_queryset
from vetline.archive.tests.conftest import item
from vetline.core.context import RequestContext, use_context
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db
DAY0 = dt.date(2025, 3, 1)


def _ids(query: str = "", **params: Any) -> set[str]:
    qs = search_queryset(parse(query), parse_filters(params))
    return set(qs.values_list("remote_id", flat=True))


def _hold(world: Any, **kw: Any) -> Any:
    from vetline.archive.retention_actions import place_legal_hold

    kw.setdefault("matter_name", "SEC v. Acme")
    with use_context(RequestContext(channel="test")):
        return place_legal_hold(actor=world.people[Role.COMPLIANCE_OFFICER], **kw)


@pytest.fixture
def records(ingest: Callable[..., Any], world: Any) -> None:
    """Items on three accounts over ten days (network time), some edited days later."""
    from vetline.archive import actions

    for day in range(10):
        ts = dt.datetime.combine(DAY0 + dt.timedelta(days=day), dt.time(9), tzinfo=dt.UTC)
        capture = ts + dt.timedelta(hours=1)
        with mock.patch.object(actions.timezone, "now", return_value=capture):
            for account, prefix in (
                (world.corporate, "c"),
                (world.other, "o"),
                (world.employee_account, "e"),
            ):
                text = f"quarterly results {day}" if day % 2 else f"guaranteed returns {day}"
                ingest(
                    [item(f"{prefix}{day}", text=text, network_timestamp=ts.isoformat())],
                    account=account,
                )
    later = dt.datetime.combine(DAY0 + dt.timedelta(days=20), dt.time(9), tzinfo=dt.UTC)
    with mock.patch.object(actions.timezone, "now", return_value=later):
        for account, rid in ((world.corporate, "c2"), (world.other, "o3")):
            ingest(
                [item(rid, kind="edit", text="retracted", network_timestamp=later.isoformat())],
                account=account,
            )


def _held() -> set[int]:
    from vetline.archive.models import ArchivedRecord
    from vetline.archive.retention_selectors import records_under_hold

    return set(records_under_hold(ArchivedRecord.objects.all()).values_list("id", flat=True))


def _search_held(query: str = "") -> set[int]:
    qs = search_queryset(parse(query), SearchFilters(on_hold=True))
    return set(qs.values_list("id", flat=True))


def test_on_hold_finds_what_each_kind_of_hold_covers(records: None, world: Any) -> None:
    assert _ids(on_hold="1") == set()  # no active hold: nothing is on hold
    _hold(world, accounts=[world.other])
    assert _ids(on_hold="1") == {f"o{d}" for d in range(10)}
    assert _ids("quarterly", on_hold="1") == {"o1", "o3", "o5", "o7", "o9"}
    assert _ids("retracted", on_hold="1", kind="edit") == {"o3"}
    _hold(world, people=[world.people[Role.EMPLOYEE]], date_to=DAY0 + dt.timedelta(days=1))
    assert _ids(on_hold="1") - _ids(on_hold="1", account=world.other.pk) == {"e0", "e1"}
    # A query holds every version of an item one version of which matches: c2's edit does not
    # say "returns", its first version does.
    _hold(world, accounts=[world.corporate], query="RETURNS 2")
    assert _ids(on_hold="1", account=world.corporate.pk) == {"c2"}
    assert _ids("retracted", on_hold="1", account=world.corporate.pk) == {"c2"}
    assert _search_held() == _held()


def test_released_holds_do_not_count(records: None, world: Any) -> None:
    from vetline.archive.retention_actions import release_legal_hold

    h = _hold(world, accounts=[world.corporate])
    assert _ids(on_hold="1") >= {"c0", "c9"}
    with use_context(RequestContext(channel="test")):
        release_legal_hold(actor=world.people[Role.COMPLIANCE_OFFICER], hold=h, reason="settled")
    assert _ids(on_hold="1") == set()


@st.composite
def holds(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for _ in range(draw(st.integers(1, 3))):
        days = sorted(draw(st.lists(st.integers(0, 22), min_size=2, max_size=2)))
        out.append(
            {
                "accounts": draw(st.sets(st.sampled_from(["corporate", "other", "employee"]))),
                "person": draw(st.booleans()),
                "date_from": DAY0 + dt.timedelta(days=days[0]) if draw(st.booleans()) else None,
                "date_to": DAY0 + dt.timedelta(days=days[1]) if draw(st.booleans()) else None,
                "query": draw(st.sampled_from(["", "", "results", "RETURNS 4", "tracted", "xyz"])),
                "released": draw(st.integers(0, 4)) == 0,
            }
        )
    return out


def test_on_hold_is_exactly_what_disposal_holds(records: None, world: Any) -> None:
    """For any set of holds, the search filter and the disposal's selector agree, with and
    without words, under both plans."""
    from vetline.archive.models_retention import LegalHold

    accounts = {
        "corporate": world.corporate,
        "other": world.other,
        "employee": world.employee_account,
    }

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(holds())
    def check(specs: list[dict[str, Any]]) -> None:
        sid = transaction.savepoint()
        try:
            for spec in specs:
                if not spec["accounts"] and not spec["person"]:
                    continue
                h = _hold(
                    world,
                    accounts=[accounts[a] for a in sorted(spec["accounts"])],
                    people=[world.people[Role.EMPLOYEE]] if spec["person"] else [],
                    date_from=spec["date_from"],
                    date_to=spec["date_to"],
                    query=spec["query"],
                )
                if spec["released"]:
                    LegalHold.objects.filter(pk=h.pk).update(released_at=dt.datetime.now(dt.UTC))
            held = _held()
            assert _search_held() == held
            node = parse("quarterly OR retracted")
            with_words = set(search_queryset(node, SearchFilters()).values_list("id", flat=True))
            assert _search_held("quarterly OR retracted") == held & with_words
            for plan in (Plan.MATCHES_FIRST, Plan.INDEX_WALK):
                page = search_page(node, SearchFilters(on_hold=True), limit=200, plan=plan)
                assert {r.pk for r in page.items} == held & with_words
        finally:
            transaction.savepoint_rollback(sid)

    check()


def test_person_is_their_personal_for_business_accounts(records: None, world: Any) -> None:
    from vetline.accounts.models import AccountKind, SocialAccount

    employee = world.people[Role.EMPLOYEE]
    assert _ids(person=employee.pk) == {f"e{d}" for d in range(10)}
    assert _ids("quarterly", person=employee.pk) == {"e1", "e3", "e5", "e7", "e9"}
    # The officer owns the corporate accounts: a person search does not map those to them.
    assert _ids(person=world.people[Role.COMPLIANCE_OFFICER].pk) == set()
    second = SocialAccount.objects.create(
        network="x", handle="@jane", kind=AccountKind.EMPLOYEE, owner=employee
    )
    assert _ids(person=employee.pk) == {f"e{d}" for d in range(10)}
    assert second.pk
    assert _ids(person=employee.pk, account=world.corporate.pk) == set()
    assert _ids(person=999_999) == set()


@pytest.mark.parametrize("qs", ["person=abc", "person=0", "person=9223372036854775808"])
def test_bad_person_is_a_422(world: Any, api: Any, qs: str) -> None:
    r = api(world.people[Role.AUDITOR])("GET", f"/api/archive/search?{qs}")
    assert r.status_code == 422, r.content


def test_on_hold_and_person_through_the_api(records: None, world: Any, api: Any) -> None:
    from vetline.audit.models import AuditEvent

    _hold(world, accounts=[world.other], date_from=DAY0 + dt.timedelta(days=8))
    call = api(world.people[Role.SUPERVISOR])
    r = call("GET", "/api/archive/search?on_hold=true")
    assert r.status_code == 200, r.content
    # o3: its edit was posted after the start of the range, so both its versions are held
    assert [h["remote_id"] for h in r.json()["items"]] == ["o3", "o9", "o8", "o3"]
    assert r.json()["partial"] is False
    employee = world.people[Role.EMPLOYEE]
    r = call("GET", f"/api/archive/search?q=quarterly&person={employee.pk}&limit=2")
    assert [h["remote_id"] for h in r.json()["items"]] == ["e9", "e7"] and r.json()["next"]
    ev = AuditEvent.objects.filter(action="archive.search.run").latest("id")
    assert ev.after["filters"] == {"person_id": employee.pk}
    r = call("GET", "/api/archive/search?on_hold=false")
    assert len(r.json()["items"]) == 32


def test_on_hold_and_person_on_the_page_and_in_saved_searches(
    records: None, world: Any, login: Any, api: Any
) -> None:
    from vetline.archive.models_search import SavedSearch

    _hold(world, accounts=[world.corporate], query="results 3")
    employee = world.people[Role.EMPLOYEE]
    client = login(world.people[Role.COMPLIANCE_OFFICER])
    form = client.get("/archive/search/").content.decode()
    assert 'name="on_hold"' in form and 'name="person"' in form
    assert f'<option value="{employee.pk}"' in form  # owns a personal-for-business account
    html = client.get("/archive/search/", {"on_hold": "1"}).content.decode()
    assert "quarterly results 3" in html and "quarterly results 5" not in html
    assert 'name="on_hold" id="id_on_hold" value="1" checked' in html
    html = client.get("/archive/search/", {"q": "guaranteed", "person": employee.pk}).content
    assert b"</mark> returns 4" in html and html.count(b'<td class="snippet">') == 5
    r = client.post("/archive/search/saved/", {"name": "held", "q": "results", "on_hold": "1"})
    assert r.status_code == 302
    saved = SavedSearch.objects.get(name="held")
    assert saved.filters == {"on_hold": True}
    page = client.get("/archive/search/").content.decode()
    assert "on_hold=True" in page
    assert (
        "<mark>results</mark> 3"
        in client.get("/archive/search/", {"q": "results", "on_hold": "True"}).content.decode()
    )
    r = api(world.people[Role.COMPLIANCE_OFFICER])(
        "POST",
        "/api/archive/search/saved",
        json={"name": "jane", "q": "", "filters": {"person": employee.pk, "on_hold": True}},
    )
    assert r.status_code == 201, r.content
    assert r.json()["filters"] == {"person": employee.pk, "on_hold": True}
    bad = api(world.people[Role.COMPLIANCE_OFFICER])(
        "POST", "/api/archive/search/saved", json={"name": "bad", "filters": {"person": "x"}}
    )
    assert bad.status_code == 422


def test_a_documented_disposal_takes_the_words_out_of_the_index(records: None, world: Any) -> None:
    from vetline.archive.actions import sign_tree_head
    from vetline.archive.retention_actions import dispose_expired

    assert _ids("guaranteed", account=world.other.pk) == {f"o{d}" for d in range(0, 10, 2)}
    sign_tree_head()
    _hold(world, accounts=[world.corporate, world.employee_account])
    with use_context(RequestContext(channel="test")):
        report = dispose_expired(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=365 * 40))
    assert report.disposed == 11  # the other account's 10 items and 1 edit
    assert _ids("guaranteed", account=world.other.pk) == set()
    assert _ids("guaranteed") == {f"{p}{d}" for p in "ce" for d in range(0, 10, 2)}
    for plan in (Plan.MATCHES_FIRST, Plan.INDEX_WALK):
        page = search_page(parse("guaranteed"), SearchFilters(account_id=world.other.pk), plan=plan)
        assert page.items == []
