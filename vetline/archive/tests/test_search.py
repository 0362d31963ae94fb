"""Archive search: the query language, its semantics on the database in use (SQLite FTS5 or
PostgreSQL), filters, keyset pages, the conversation view, saved searches, auditing, escaping."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vetline.archive import search
from vetline.archive.search import And, Or, Phrase, QueryError, Term, parse
from vetline.archive.tests.conftest import item
from vetline.conftest import audit_actions_since, last_audit_id
from vetline.identity.roles import Role

# --- The parser (pure) -------------------------------------------------------------------------


def test_parse_words_phrases_prefixes_and_operators() -> None:
    assert parse("") is None
    assert parse("   ") is None
    assert parse("Rates") == Term("rates")
    assert parse("guarant*") == Term("guarant", prefix=True)
    assert parse('"Guaranteed  RETURNS"') == Phrase(("guaranteed", "returns"))
    assert parse("rates fees") == And((Term("rates"), Term("fees")))
    assert parse("rates AND fees") == And((Term("rates"), Term("fees")))
    assert parse("rates OR fees OR tax") == Or((Term("rates"), Term("fees"), Term("tax")))
    assert parse("rates NOT fees") == And((Term("rates"),), (Term("fees"),))
    assert parse("NOT fees rates") == And((Term("rates"),), (Term("fees"),))
    assert parse("a1 OR b1 c1") == Or((Term("a1"), And((Term("b1"), Term("c1")))))
    assert parse("(a1 OR b1) c1") == And((Or((Term("a1"), Term("b1"))), Term("c1")))
    assert parse("e-mail") == Phrase(("e", "mail"))
    assert parse("or and not") == And((Term("or"), Term("and"), Term("not")))  # lower case: words
    assert parse("NOT NOT rates") == Term("rates")
    assert parse("café") == Term("café")


@pytest.mark.parametrize(
    "query",
    [
        '"unclosed',
        "NOT rates",
        "rates OR NOT fees",
        "(rates",
        "rates)",
        "()",
        "AND rates",
        "rates AND",
        "rates OR",
        "g*",
        "*",
        "gu*ar",
        '""',
        "x" * 501,
        "(" * 9 + "a" + ")" * 9,
        " ".join(f"w{i}" for i in range(33)),
    ],
)
def test_malformed_queries_raise_a_clear_error(query: str) -> None:
    with pytest.raises(QueryError) as exc:
        parse(query)
    assert str(exc.value) and isinstance(exc.value, ValueError)


def test_compilers_quote_every_word() -> None:
    node = parse('(rates OR "fixed income"*) NOT guarant*')
    assert node is not None
    assert search.to_fts5(node) == '((("rates" OR "fixed income"*)) NOT "guarant"*)'
    assert search.to_tsquery(node) == "(('rates' | ('fixed' <-> 'income':*)) & !'guarant':*)"


@settings(max_examples=400, deadline=None)
@given(
    st.text(max_size=120)
    | st.lists(st.sampled_from(['"', "(", ")", "*", " ", "AND", "OR", "NOT", "ab", "-", "é"])).map(
        "".join
    )
)
def test_any_string_gives_a_query_or_a_clear_error(query: str) -> None:
    try:
        node = parse(query)
    except QueryError as exc:
        assert str(exc)
        return
    if node is not None:
        assert "'" not in "".join(search.WORD_RE.findall(search.to_tsquery(node)))
        search.to_fts5(node)
        search.to_text(node)
        search.highlight(query, node)


def test_highlight_marks_matches_and_makes_no_markup() -> None:
    node = parse('guarant* OR "no risk"')
    segs = search.highlight("<b>Guaranteed</b> gains, no risk!", node)
    assert [s for s, hit in segs if hit] == ["Guaranteed", "no risk"]
    assert "".join(s for s, _ in segs) == "<b>Guaranteed</b> gains, no risk!"


# --- On the database ---------------------------------------------------------------------------

TEXTS = {
    "r1": "Guaranteed returns on every fund",
    "r2": "Our returns are never guaranteed",
    "r3": "Fixed income outlook for the quarter",
    "r4": "Guarantee terms apply; see the prospectus",
    "r5": "Lunch on Friday? café at noon",
    "r6": "returns policy for the store",
}


@pytest.fixture
def corpus(ingest: Callable[..., Any], world: Any) -> dict[str, int]:
    from vetline.archive.models import ArchivedRecord

    ingest([item(rid, text=text) for rid, text in TEXTS.items()])
    return dict(ArchivedRecord.objects.values_list("remote_id", "id"))


def _ids(query: str, **filters: Any) -> set[str]:
    from vetline.archive.search_actions import parse_filters
    from vetline.archive.search_backends import search_queryset

    qs = search_queryset(parse(query), parse_filters(filters))
    return set(qs.values_list("remote_id", flat=True))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("returns", {"r1", "r2", "r6"}),
        ("RETURNS guaranteed", {"r1", "r2"}),
        ("returns AND guaranteed", {"r1", "r2"}),
        ('"guaranteed returns"', {"r1"}),
        ('"returns guaranteed"', set()),
        ("guarant*", {"r1", "r2", "r4"}),
        ("guarantee", {"r4"}),
        ("returns NOT guaranteed", {"r6"}),
        ("income OR prospectus", {"r3", "r4"}),
        ("(income OR prospectus) NOT terms", {"r3"}),
        ("café", {"r5"}),
        ("cafe", set()),
        ("friday", {"r5"}),
        ('"fixed income"*', {"r3"}),
        ('"fixed inc"*', {"r3"}),
        ("nothingmatches", set()),
        ("", {"r1", "r2", "r3", "r4", "r5", "r6"}),
    ],
)
def test_query_semantics(corpus: dict[str, int], query: str, expected: set[str]) -> None:
    assert _ids(query) == expected


@pytest.mark.django_db
def test_author_handle_is_not_searched_as_text(ingest: Callable[..., Any]) -> None:
    ingest([item("a1", text="hello", author="@zebra")])
    assert _ids("zebra") == set()
    assert _ids("", handle="@ZEBRA") == {"a1"}


@pytest.mark.django_db
def test_filters(ingest: Callable[..., Any], world: Any) -> None:
    from vetline.archive import actions
    from vetline.archive.models import ArchivedRecord, ScreeningVerdict

    def at(day: int) -> Any:
        return mock.patch.object(
            actions.timezone, "now", return_value=dt.datetime(2025, 3, day, 12, tzinfo=dt.UTC)
        )

    with at(1):
        ingest([item("a", text="rates up", participants=["@client9", "@acme"])])
    with at(2):
        ingest([item("b", text="rates down", kind="reply", direction="inbound", author="@bob")])
    with at(3):
        ingest([item("c", text="rates flat")], account=world.other)
    rec = dict(ArchivedRecord.objects.values_list("remote_id", "id"))
    assert _ids("rates", account=world.corporate.pk) == {"a", "b"}
    assert _ids("rates", network="linkedin") == {"c"}
    assert _ids("rates", kind="reply") == {"b"}
    assert _ids("rates", direction="outbound") == {"a", "c"}
    assert _ids("rates", since="2025-03-02") == {"b", "c"}
    assert _ids("rates", until="2025-03-02") == {"a", "b"}
    assert _ids("rates", since="2025-03-02", until="2025-03-02") == {"b"}
    assert _ids("", handle="@bob") == {"b"}
    assert _ids("", handle="@client9") == {"a"}
    # The latest verdict decides: a's warn was superseded by a pass.
    old = dt.datetime(2025, 3, 5, tzinfo=dt.UTC)
    new = dt.datetime(2025, 3, 6, tzinfo=dt.UTC)
    for rid, verdict, when in (("a", "warn", old), ("a", "pass", new), ("b", "block", old)):
        ScreeningVerdict.objects.create(
            record_id=rec[rid], scope="x", verdict=verdict, screened_at=when
        )
    assert _ids("rates", flagged="1") == {"b"}
    assert _ids("rates", verdict="pass") == {"a"}
    assert _ids("rates", verdict="warn") == set()
    for bad in (
        {"kind": "tweet"},
        {"since": "yesterday"},
        {"account": "x"},
        {"since": "2025-03-03", "until": "2025-03-01"},
        {"verdict": "meh"},
    ):
        with pytest.raises(QueryError):
            _ids("", **bad)


@pytest.mark.django_db
def test_full_text_index_follows_a_content_update(corpus: dict[str, int]) -> None:
    """Disposal blanks a record's content with a controlled UPDATE; the index must follow."""
    from vetline.archive.models import ArchivedRecord

    with connection.cursor() as cur:
        if connection.vendor == "sqlite":  # lift the append-only guard for this test only
            cur.execute("DROP TRIGGER IF EXISTS archive_archivedrecord_no_update")
            cur.execute("DROP TRIGGER IF EXISTS archive_archivedrecord_disposal_only")
        else:  # only the guard: the trigger that keeps the stored tsvector must still run
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE needs no pending checks
            cur.execute(
                "ALTER TABLE archive_archivedrecord"
                " DISABLE TRIGGER archive_archivedrecord_append_only"
            )
        cur.execute(
            "UPDATE archive_archivedrecord SET text = %s WHERE id = %s",
            ["[disposed] prospectus", corpus["r1"]],
        )
        if connection.vendor == "postgresql":
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute(
                "ALTER TABLE archive_archivedrecord"
                " ENABLE TRIGGER archive_archivedrecord_append_only"
            )
    assert ArchivedRecord.objects.get(pk=corpus["r1"]).text.startswith("[disposed]")
    assert _ids('"guaranteed returns"') == set()
    assert _ids("disposed") == {"r1"}
    assert _ids("prospectus") == {"r1", "r4"}


# --- Keyset pages through the API --------------------------------------------------------------


@pytest.mark.django_db
def test_keyset_pages_cover_every_match_once(
    ingest: Callable[..., Any], world: Any, api: Any
) -> None:
    from vetline.archive import actions
    from vetline.archive.models import ArchivedRecord

    for batch in range(4):  # rows of a batch share one capture time: ties broken by id
        when = dt.datetime(2025, 1, 1 + batch, tzinfo=dt.UTC)
        with mock.patch.object(actions.timezone, "now", return_value=when):
            ingest([item(f"k{batch}-{i}", text=f"alpha {i}") for i in range(7)])
    ingest([item("other", text="beta")])
    call = api(world.people[Role.COMPLIANCE_OFFICER])
    seen: list[int] = []
    after = ""
    for _ in range(20):
        r = call("GET", f"/api/archive/search?q=alpha&limit=5&after={after}")
        assert r.status_code == 200, r.content
        body = r.json()
        seen += [h["id"] for h in body["items"]]
        if body["next"] is None:
            break
        after = body["next"]
    expected = list(
        ArchivedRecord.objects.filter(text__startswith="alpha")
        .order_by("-captured_at", "-id")
        .values_list("id", flat=True)
    )
    assert seen == expected and len(seen) == 28 == len(set(seen))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "qs",
    [
        'q="unclosed',
        "q=NOT+x",
        "after=garbage!",
        "after=bm90LWEtY3Vyc29y",
        "kind=tweet",
        "since=2025-13-45",
        "limit=100000",
    ],
)
def test_bad_input_is_a_422(world: Any, api: Any, qs: str) -> None:
    r = api(world.people[Role.AUDITOR])("GET", f"/api/archive/search?{qs}")
    assert r.status_code == 422, r.content
    assert r.json()["detail"]


@pytest.mark.django_db
@given(st.text(max_size=60))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_api_answers_any_query_with_200_or_422(api_client_for_auditor: Any, q: str) -> None:
    from urllib.parse import urlencode

    r = api_client_for_auditor("GET", "/api/archive/search?" + urlencode({"q": q}))
    if "\x00" in q:  # refused for every endpoint by the RejectNul middleware
        assert r.status_code == 400 and r.json()["code"] == "invalid_character"
    else:
        assert r.status_code in (200, 422), (q, r.status_code, r.content[:200])


@pytest.fixture
def api_client_for_auditor(world: Any, api: Any) -> Any:
    return api(world.people[Role.AUDITOR])


# --- Audit -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_searches_and_record_views_are_audited(
    corpus: dict[str, int], world: Any, api: Any, login: Any
) -> None:
    from vetline.audit.models import AuditEvent

    officer = world.people[Role.COMPLIANCE_OFFICER]
    start = last_audit_id()
    r = api(officer)("GET", f"/api/archive/search?q=guarant*&account={world.corporate.pk}")
    assert r.status_code == 200
    ev = AuditEvent.objects.filter(id__gt=start, action="archive.search.run").get()
    assert ev.actor_id == officer.pk
    assert ev.after["query"] == "guarant*"
    assert ev.after["filters"] == {"account_id": world.corporate.pk}
    assert ev.after["results"] == 3

    start = last_audit_id()
    client = login(officer)
    assert client.get(f"/archive/records/{corpus['r1']}/").status_code == 200
    ev = AuditEvent.objects.get(id__gt=start, action="archive.record.view")
    assert (ev.object_type, ev.object_id) == ("archive.archivedrecord", str(corpus["r1"]))

    start = last_audit_id()
    assert client.get("/archive/search/?q=returns&kind=post").status_code == 200
    assert audit_actions_since(start) == ["archive.search.run"]
    start = last_audit_id()
    assert client.get("/archive/search/").status_code == 200  # the empty form runs nothing
    assert audit_actions_since(start) == []


# --- Saved searches ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_saved_searches_are_per_person_and_audited(world: Any, api: Any) -> None:
    officer = api(world.people[Role.COMPLIANCE_OFFICER])
    auditor = api(world.people[Role.AUDITOR])
    start = last_audit_id()
    r = officer(
        "POST",
        "/api/archive/search/saved",
        json={"name": "risky", "q": "guarant*", "filters": {"kind": "post"}},
    )
    assert r.status_code == 201, r.content
    saved_id = r.json()["id"]
    assert r.json()["filters"] == {"kind": "post"}
    dup = officer("POST", "/api/archive/search/saved", json={"name": "risky", "q": "x"})
    assert dup.status_code == 409
    bad = officer("POST", "/api/archive/search/saved", json={"name": "b", "q": '"open'})
    assert bad.status_code == 422
    assert [s["name"] for s in officer("GET", "/api/archive/search/saved").json()] == ["risky"]
    assert auditor("GET", "/api/archive/search/saved").json() == []
    assert auditor("DELETE", f"/api/archive/search/saved/{saved_id}").status_code == 404
    assert officer("DELETE", f"/api/archive/search/saved/{saved_id}").status_code == 204
    assert officer("GET", "/api/archive/search/saved").json() == []
    assert audit_actions_since(start) == ["archive.search.save", "archive.search.delete"]


@pytest.mark.django_db
def test_save_and_delete_from_the_page(world: Any, login: Any) -> None:
    from vetline.archive.models_search import SavedSearch

    client = login(world.people[Role.SUPERVISOR])
    r = client.post("/archive/search/saved/", {"name": "mine", "q": "rates", "kind": "reply"})
    assert r.status_code == 302
    saved = SavedSearch.objects.get()
    assert (saved.query, saved.filters) == ("rates", {"kind": "reply"})
    page = client.get("/archive/search/").content.decode()
    assert "mine" in page and "kind=reply" in page
    assert client.post(f"/archive/search/saved/{saved.pk}/delete/").status_code == 302
    assert not SavedSearch.objects.exists()


# --- Pages: escaping, conversation -------------------------------------------------------------

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> payload'


@pytest.mark.django_db
def test_results_and_query_are_escaped(ingest: Callable[..., Any], world: Any, login: Any) -> None:
    ingest([item("x1", text=HOSTILE, author='"><svg onload=alert(2)>', conversation_id="c<1>")])
    client = login(world.people[Role.AUDITOR])
    r = client.get("/archive/search/", {"q": 'payload OR "<script>"'})
    html = r.content.decode()
    html += client.get("/archive/search/", {"q": "payload", "handle": "<b>h</b>"}).content.decode()
    assert r.status_code == 200
    for raw in ("<script>alert", "<img src=x", "<svg onload", "<b>h</b>"):
        assert raw not in html
    assert "&lt;script&gt;" in html and "<mark>payload</mark>" in html
    r = client.get("/archive/search/", {"q": 'x "<img src=y onerror=alert(3)>'})
    assert r.status_code == 422 and "<img src=y" not in r.content.decode()


@pytest.mark.django_db
def test_conversation_shows_every_version_and_deletions(
    ingest: Callable[..., Any], world: Any, login: Any
) -> None:
    from vetline.audit.models import AuditEvent

    ingest(
        [
            item("m1", text="first <b>message</b>", conversation_id="conv-1"),
            item("m2", text="second message", conversation_id="conv-1"),
            item("m3", text="elsewhere", conversation_id="conv-2"),
        ]
    )
    ingest([item("m1", kind="edit", text="first message, edited", conversation_id="conv-1")])
    ingest([item("m2", kind="deletion", text="", conversation_id="conv-1")])
    client = login(world.people[Role.COMPLIANCE_OFFICER])
    start = last_audit_id()
    r = client.get(f"/archive/search/conversations/{world.corporate.pk}/", {"c": "conv-1"})
    html = r.content.decode()
    assert r.status_code == 200
    assert "first &lt;b&gt;message&lt;/b&gt;" in html and "first message, edited" in html
    assert "edited (2 versions)" in html and "deleted" in html and "elsewhere" not in html
    assert html.index("first message, edited") < html.index("second message")
    ev = AuditEvent.objects.get(id__gt=start, action="archive.record.view")
    assert len(ev.after["record_ids"]) == 4 and ev.after["conversation_id"] == "conv-1"
    missing = client.get(f"/archive/search/conversations/{world.corporate.pk}/", {"c": "none"})
    assert missing.status_code == 404
    denied = login(world.people[Role.PUBLISHER]).get(
        f"/archive/search/conversations/{world.corporate.pk}/", {"c": "conv-1"}
    )
    assert denied.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
def test_only_archive_readers_search(world: Any, api: Any, role: Role) -> None:
    r = api(world.people[role])("GET", "/api/archive/search?q=x")
    readers = {Role.COMPLIANCE_OFFICER, Role.SUPERVISOR, Role.AUDITOR}
    assert r.status_code == (200 if role in readers else 403)


def test_api_schema_lists_the_search_operations() -> None:
    from vetline.api import api

    paths = api.get_openapi_schema()["paths"]
    assert {"/api/archive/search", "/api/archive/search/saved"} <= set(paths)
    assert json.dumps(paths["/api/archive/search"])
