"""Retention, legal holds and disposal: periods, holds (API, pages, audit), the disposal job,
the database guard on archived records, and verification after disposal."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from vetline.archive import retention
from vetline.archive.actions import sign_tree_head
from vetline.archive.integrity.canonical import TOMBSTONE_PREFIX, tombstone_bytes
from vetline.archive.models import ArchivedRecord, LeafKind, LogLeaf
from vetline.archive.models_retention import DisposalRecord, DisposalRun, LegalHold, RecordClass
from vetline.archive.retention_actions import dispose_expired, place_legal_hold
from vetline.archive.retention_selectors import is_held, records_under_hold
from vetline.archive.tests.conftest import item
from vetline.archive.verification import verify_database
from vetline.conftest import audit_actions_since, last_audit_id
from vetline.core.context import RequestContext, use_context
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db
BASE = "/api/archive/retention"
TRIGGERS = importlib.import_module("vetline.archive.migrations.0002_append_only_triggers")


def later(years: int) -> dt.datetime:
    return timezone.now() + dt.timedelta(days=365 * years + 2)


@contextlib.contextmanager
def guard_dropped() -> Iterator[None]:
    """Drop the guard on archived records inside the test's transaction, as an attacker with
    the database owner's role could (the guard keeps migration 0002's trigger names)."""
    vendor = connection.vendor
    down = TRIGGERS.SQLITE_DOWN if vendor == "sqlite" else TRIGGERS.POSTGRES_DOWN
    with connection.cursor() as cur:
        for sql in down:
            if "archive_archivedrecord" in sql:
                cur.execute(sql)
    yield


def _sql(statement: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cur:
        cur.execute(statement, params or [])


@pytest.fixture
def records(ingest: Any, world: Any) -> dict[str, list[ArchivedRecord]]:
    ingest([item(f"c{i}", text=f"quarterly results {i}") for i in range(3)])
    ingest([item("c1", kind="edit", text="quarterly results 1, edited")])
    ingest([item(f"o{i}", text=f"other {i}") for i in range(2)], account=world.other)
    ingest(
        [item("e0", text="advice to a client", author="jane-advisor")],
        account=world.employee_account,
    )
    sign_tree_head()
    by_account: dict[str, list[ArchivedRecord]] = {}
    for r in ArchivedRecord.objects.select_related("account").order_by("log_index"):
        by_account.setdefault(r.account.handle, []).append(r)
    return by_account


def hold(world: Any, **kw: Any) -> LegalHold:
    kw.setdefault("matter_name", "SEC v. Acme")
    with use_context(RequestContext(channel="test")):
        return place_legal_hold(actor=world.people[Role.COMPLIANCE_OFFICER], **kw)


def run(**kw: Any) -> retention.DisposalReport:
    with use_context(RequestContext(channel="test")):
        return dispose_expired(**kw)


# --------------------------------------------------------------------------- periods


def test_defaults_follow_finra_4511_and_sec_17a_4() -> None:
    rows = {rc.code: rc for rc in RecordClass.objects.all()}
    assert {c: (r.retention_days, r.easily_accessible_days) for c, r in rows.items()} == {
        "business_communication": (1095, 730),
        "books_and_records": (2190, 730),
        "profile": (2190, 730),
        "internal": (1095, 730),
    }
    assert "17a-4" in rows["business_communication"].regulatory_basis
    help_text = str(RecordClass._meta.get_field("retention_days").help_text)
    assert "FINRA Rule 4511" in help_text and "17a-4(b)" in help_text


def test_expiry_never_ends_a_day_early_over_a_leap_year() -> None:
    anchor = dt.datetime(2024, 1, 10, tzinfo=dt.UTC)  # 2024 has 29 February
    assert retention.expires_at(anchor, 1095) == dt.datetime(2027, 1, 10, tzinfo=dt.UTC)
    assert not retention.is_expired(anchor, 1095, dt.datetime(2027, 1, 9, 12, tzinfo=dt.UTC))
    now = dt.datetime(2027, 1, 10, tzinfo=dt.UTC)
    assert retention.cutoff(now, 1095) == anchor
    leap = dt.datetime(2024, 2, 29, tzinfo=dt.UTC)
    assert retention.expires_at(leap, 365) == dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def test_record_class_update_is_validated_and_audited(world: Any, api: Any) -> None:
    call = api(world.people[Role.COMPLIANCE_OFFICER])
    start = last_audit_id()
    r = call(
        "PUT",
        f"{BASE}/classes/business_communication",
        json={"retention_days": 1000, "easily_accessible_days": 730},
    )
    assert r.status_code == 422 and "at least 1,095 days" in r.json()["detail"]
    r = call(
        "PUT",
        f"{BASE}/classes/internal",
        json={"retention_days": 400, "easily_accessible_days": 500},
    )
    assert r.status_code == 422 and r.json()["field"] == "easily_accessible_days"
    r = call(
        "PUT",
        f"{BASE}/classes/business_communication",
        json={"retention_days": 2555, "easily_accessible_days": 730},
    )
    assert r.status_code == 200 and r.json()["retention_days"] == 2555
    assert audit_actions_since(start)[-1] == "archive.record_class.update"
    from vetline.audit.models import AuditEvent

    event = AuditEvent.objects.get(action="archive.record_class.update")
    assert event.before["retention_days"] == 1095 and event.after["retention_days"] == 2555
    assert (
        call(
            "PUT", f"{BASE}/classes/nope", json={"retention_days": 5, "easily_accessible_days": 1}
        ).status_code
        == 404
    )
    sup = api(world.people[Role.SUPERVISOR])
    assert (
        sup(
            "PUT",
            f"{BASE}/classes/internal",
            json={"retention_days": 2000, "easily_accessible_days": 730},
        ).status_code
        == 403
    )


# --------------------------------------------------------------------------- disposal


def test_expired_unheld_records_are_disposed_and_the_log_still_verifies(
    records: Any, world: Any
) -> None:
    total = ArchivedRecord.objects.count()
    assert run(now=later(2)).disposed == 0  # nothing has expired yet
    preview = run(now=later(4), dry_run=True)
    assert preview.disposed == total and DisposalRecord.objects.count() == 0
    start = last_audit_id()

    report = run(now=later(4))

    assert report.disposed == total and report.held_skipped == 0
    assert report.disposed_by_class == {"business_communication": total}
    assert sorted(report.disposed_ids) == sorted(
        ArchivedRecord.objects.values_list("id", flat=True)
    )
    assert audit_actions_since(start) == ["archive.disposal.run"]
    stored = DisposalRun.objects.get(pk=report.run_id)
    assert stored.status == "done" and stored.disposed_count == total
    for r in ArchivedRecord.objects.all():
        assert r.text == "" and r.participants == [] and r.attachments == []
        d = DisposalRecord.objects.get(record=r)
        leaf = LogLeaf.objects.get(index=r.log_index)
        assert bytes(d.original_leaf_hash) == bytes(leaf.leaf_hash)
        assert bytes(r.raw_payload) == tombstone_bytes(
            index=r.log_index, original_leaf_hash=bytes(leaf.leaf_hash)
        )
        assert LogLeaf.objects.get(index=d.disposal_log_index).kind == LeafKind.DISPOSAL
    result = verify_database()
    assert result.ok, result.lines()
    assert result.report.disposed_records == total
    sign_tree_head()
    assert verify_database().ok
    # idempotent: a second run finds nothing left to dispose of
    assert run(now=later(4)).disposed == 0


def test_held_records_are_never_disposed(records: Any, world: Any) -> None:
    h = hold(world, accounts=[world.corporate])
    corporate = records["@acme"]
    assert all(is_held(r) for r in corporate)
    assert not any(is_held(r) for r in records["acme-corp"])

    report = run(now=later(10))

    assert report.held_skipped == len(corporate)
    assert not DisposalRecord.objects.filter(record__in=corporate).exists()
    assert {r.text for r in ArchivedRecord.objects.filter(account=world.corporate)} != {""}
    assert DisposalRecord.objects.filter(record__account=world.other).count() == 2
    assert verify_database().ok

    with use_context(RequestContext(channel="test")):
        from vetline.archive.retention_actions import release_legal_hold

        release_legal_hold(actor=world.people[Role.COMPLIANCE_OFFICER], hold=h, reason="settled")
    report = run(now=later(10))
    assert report.disposed == len(corporate) and report.held_skipped == 0
    assert verify_database().ok


def test_hold_by_person_date_range_and_query(records: Any, world: Any) -> None:
    employee = world.people[Role.EMPLOYEE]
    by_person = hold(world, people=[employee])
    assert set(records_under_hold(ArchivedRecord.objects.all())) == set(records["jane-advisor"])
    LegalHold.objects.filter(pk=by_person.pk).update(released_at=timezone.now())

    today = timezone.now().date()
    hold(world, accounts=[world.corporate], query="RESULTS 2")
    held = set(records_under_hold(ArchivedRecord.objects.all()))
    assert {r.remote_id for r in held} == {"c2"}
    hold(
        world,
        accounts=[world.other],
        date_from=today - dt.timedelta(days=3650),
        date_to=today - dt.timedelta(days=3000),
    )
    # the network timestamp of every test item is 2025-03-01: outside that range
    assert {r.remote_id for r in records_under_hold(ArchivedRecord.objects.all())} == {"c2"}
    hold(world, accounts=[world.other], date_from=dt.date(2025, 3, 1), date_to=dt.date(2025, 3, 1))
    assert {r.remote_id for r in records_under_hold(ArchivedRecord.objects.all())} == {
        "c2",
        "o0",
        "o1",
    }


def test_every_version_of_a_held_item_is_held(records: Any, world: Any) -> None:
    hold(world, accounts=[world.corporate], query="edited")  # matches only v2 of c1
    versions = ArchivedRecord.objects.filter(remote_id="c1")
    assert versions.count() == 2 and all(is_held(v) for v in versions)
    run(now=later(4))
    assert not DisposalRecord.objects.filter(record__remote_id="c1").exists()


def test_a_tampered_record_is_not_disposed(records: Any) -> None:
    victim = records["acme-corp"][0]
    with guard_dropped():
        _sql("UPDATE archive_archivedrecord SET text = 'forged' WHERE id = %s", [victim.pk])
    report = run(now=later(4))
    assert report.integrity_skipped == 1
    assert not DisposalRecord.objects.filter(record=victim).exists()
    assert "record_modified" in verify_database().counts


# --------------------------------------------------------------------------- the guard


def test_database_refuses_content_changes_without_a_disposal_record(records: Any) -> None:
    victim = records["acme-corp"][0]
    for statement in (
        "UPDATE archive_archivedrecord SET text = '', participants = '[]' WHERE id = %s",
        "DELETE FROM archive_archivedrecord WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            _sql(statement, [victim.pk])


def test_database_allows_only_the_recorded_tombstone(records: Any) -> None:
    run(now=later(4))
    disposed = ArchivedRecord.objects.filter(account__handle="acme-corp").first()
    assert disposed is not None
    for statement, params in (
        (
            "UPDATE archive_archivedrecord SET raw_payload = %s WHERE id = %s",
            [TOMBSTONE_PREFIX + b"{}", disposed.pk],
        ),
        ("UPDATE archive_archivedrecord SET author_handle = 'x' WHERE id = %s", [disposed.pk]),
        ("UPDATE archive_archivedrecord SET text = 'back' WHERE id = %s", [disposed.pk]),
        ("DELETE FROM archive_archivedrecord WHERE id = %s", [disposed.pk]),
        ("UPDATE archive_disposalrecord SET reason = 'x'", []),
        ("DELETE FROM archive_disposalrecord", []),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            _sql(statement, params)


def test_verify_fails_when_content_is_blanked_without_a_disposal(records: Any) -> None:
    victim = records["acme-corp"][0]
    with guard_dropped():
        _sql(
            "UPDATE archive_archivedrecord SET text = '', participants = '[]' WHERE id = %s",
            [victim.pk],
        )
    result = verify_database()
    assert not result.ok
    assert [f["index"] for f in result.findings if f["kind"] == "record_modified"] == [
        victim.log_index
    ]


def test_verify_fails_on_a_forged_tombstone(records: Any) -> None:
    victim = records["acme-corp"][1]
    leaf = bytes(LogLeaf.objects.get(index=victim.log_index).leaf_hash)
    with guard_dropped():
        _sql(
            "UPDATE archive_archivedrecord SET text = '', raw_payload = %s WHERE id = %s",
            [tombstone_bytes(index=victim.log_index, original_leaf_hash=leaf), victim.pk],
        )
    result = verify_database()
    assert result.counts == {"undocumented_disposal": 1}
    assert result.findings[0]["index"] == victim.log_index


# --------------------------------------------------------------------------- holds: API, audit


def test_placing_and_releasing_a_hold_through_the_api(world: Any, api: Any) -> None:
    call = api(world.people[Role.COMPLIANCE_OFFICER])
    start = last_audit_id()
    r = call(
        "POST",
        f"{BASE}/holds",
        json={
            "matter_name": "FINRA 2025-01",
            "account_ids": [world.corporate.pk],
            "person_ids": [world.people[Role.EMPLOYEE].pk],
            "date_from": "2025-01-01",
            "date_to": "2025-12-31",
            "query": "guarantee",
        },
    )
    assert r.status_code == 201, r.content
    hold_id = r.json()["id"]
    assert r.json()["active"] is True
    assert audit_actions_since(start) == ["archive.hold.place"]
    from vetline.audit.models import AuditEvent

    placed = AuditEvent.objects.get(action="archive.hold.place")
    assert placed.object_id == str(hold_id) and placed.after["matter_name"] == "FINRA 2025-01"
    assert placed.actor == world.people[Role.COMPLIANCE_OFFICER]

    assert call("GET", f"{BASE}/holds?active=true").json()["items"][0]["id"] == hold_id
    assert call("GET", f"{BASE}/holds/{hold_id}").json()["held_records"] == 0

    start = last_audit_id()
    r = call("POST", f"{BASE}/holds/{hold_id}/release", json={"reason": "matter closed"})
    assert r.status_code == 200 and r.json()["active"] is False
    assert r.json()["release_reason"] == "matter closed"
    assert audit_actions_since(start) == ["archive.hold.release"]
    r = call("POST", f"{BASE}/holds/{hold_id}/release", json={"reason": "again"})
    assert r.status_code == 409
    assert audit_actions_since(start) == ["archive.hold.release"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"matter_name": "  "}, "matter_name", "name"),
        ({"date_from": "2025-05-01", "date_to": "2025-04-01"}, "date_to", "before its start"),
        ({"account_ids": [], "person_ids": []}, "accounts", "custodian"),
        ({"account_ids": [999999]}, "account_ids", "No such account"),
        ({"date_from": "not a date"}, "date_from", ""),
        ({"matter_name": "x" * 201}, "matter_name", ""),
    ],
)
def test_bad_hold_input_is_refused_clearly(
    world: Any, api: Any, body: dict[str, Any], field: str, words: str
) -> None:
    call = api(world.people[Role.COMPLIANCE_OFFICER])
    full = {"matter_name": "M", "account_ids": [world.corporate.pk], **body}
    start = last_audit_id()
    r = call("POST", f"{BASE}/holds", json=full)
    assert r.status_code == 422, r.content
    assert r.json()["field"].endswith(field) and words in r.json()["detail"]
    assert audit_actions_since(start) == [] and not LegalHold.objects.exists()


def test_release_needs_a_reason(world: Any, api: Any) -> None:
    h = hold(world, accounts=[world.corporate])
    r = api(world.people[Role.COMPLIANCE_OFFICER])(
        "POST", f"{BASE}/holds/{h.pk}/release", json={"reason": " "}
    )
    assert r.status_code == 422 and r.json()["field"] == "reason"


def test_only_compliance_officers_place_holds(world: Any, api: Any) -> None:
    body = {"matter_name": "M", "account_ids": [world.corporate.pk]}
    for role in (Role.SUPERVISOR, Role.AUDITOR, Role.ADMINISTRATOR, Role.PUBLISHER):
        assert api(world.people[role])("POST", f"{BASE}/holds", json=body).status_code == 403
    with pytest.raises(Exception, match=r"legal\.hold"):
        place_legal_hold(
            actor=world.people[Role.AUDITOR], matter_name="M", accounts=[world.corporate]
        )
    assert not LegalHold.objects.exists()


def test_disposal_runs_and_preview_through_the_api(records: Any, world: Any, api: Any) -> None:
    report = run(now=later(4))
    auditor = api(world.people[Role.AUDITOR])
    runs = auditor("GET", f"{BASE}/disposal-runs").json()["items"]
    assert runs[0]["id"] == report.run_id and runs[0]["disposed_count"] == report.disposed
    detail = auditor("GET", f"{BASE}/disposal-runs/{report.run_id}").json()
    assert sorted(detail["disposed_ids"]) == sorted(report.disposed_ids)
    preview = auditor("GET", f"{BASE}/disposal-preview").json()
    assert preview["dry_run"] is True and preview["disposed"] == 0
    assert auditor("GET", f"{BASE}/disposal-runs/999999").status_code == 404


# --------------------------------------------------------------------------- page and CLI


def test_retention_page_places_and_releases_holds(records: Any, world: Any, login: Any) -> None:
    client = login(world.people[Role.COMPLIANCE_OFFICER])
    page = client.get("/archive/retention/")
    assert page.status_code == 200
    assert b"Business communication" in page.content and b"disposal-preview" in page.content

    bad = client.post(
        "/archive/retention/holds/",
        {
            "matter_name": "M",
            "accounts": [world.corporate.pk],
            "date_from": "2025-05-01",
            "date_to": "2025-04-01",
        },
    )
    assert bad.status_code == 422 and b"before its start" in bad.content
    bad = client.post("/archive/retention/holds/", {"matter_name": "", "accounts": []})
    assert bad.status_code == 422 and b"This field is required" in bad.content
    bad = client.post("/archive/retention/holds/", {"matter_name": "M"})
    assert bad.status_code == 422 and b"custodian" in bad.content

    start = last_audit_id()
    r = client.post(
        "/archive/retention/holds/",
        {"matter_name": "Doe v. Acme", "accounts": [world.corporate.pk]},
    )
    assert r.status_code == 302
    h = LegalHold.objects.get()
    detail = client.get(f"/archive/retention/holds/{h.pk}/")
    assert b"Doe v. Acme" in detail.content
    assert b'id="held-records">' + str(len(records["@acme"])).encode() in detail.content
    assert (
        client.post(f"/archive/retention/holds/{h.pk}/release/", {"reason": ""}).status_code == 422
    )
    r = client.post(f"/archive/retention/holds/{h.pk}/release/", {"reason": "dismissed"})
    assert r.status_code == 302
    again = client.post(f"/archive/retention/holds/{h.pk}/release/", {"reason": "again"})
    assert again.status_code == 409
    assert audit_actions_since(start) == ["archive.hold.place", "archive.hold.release"]

    r = client.post(
        "/archive/retention/classes/internal/",
        {"retention_days": "10", "easily_accessible_days": "20"},
    )
    assert r.status_code == 422
    r = client.post(
        "/archive/retention/classes/internal/",
        {"retention_days": "1460", "easily_accessible_days": "730"},
    )
    assert r.status_code == 302 and RecordClass.objects.get(code="internal").retention_days == 1460


def test_changing_what_a_hold_covers(records: Any, world: Any, login: Any, api: Any) -> None:
    from vetline.archive.retention_actions import place_legal_hold
    from vetline.audit.models import AuditEvent

    officer = world.people[Role.COMPLIANCE_OFFICER]
    hold = place_legal_hold(actor=officer, matter_name="Scope", accounts=[world.corporate])
    everything = len(records["@acme"])
    client = login(officer)
    page = client.get(f"/archive/retention/holds/{hold.pk}/")
    assert b'id="scope-form"' in page.content
    start = last_audit_id()
    bad = client.post(f"/archive/retention/holds/{hold.pk}/scope/", {"query": "x"})
    assert bad.status_code == 422 and b"custodian" in bad.content
    r = client.post(
        f"/archive/retention/holds/{hold.pk}/scope/",
        {"accounts": [world.corporate.pk], "query": "edited"},
    )
    assert r.status_code == 302
    hold.refresh_from_db()
    assert hold.query == "edited"
    narrowed = client.get(f"/archive/retention/holds/{hold.pk}/")
    held = int(narrowed.content.split(b'id="held-records">')[1].split(b"<")[0])
    assert 0 < held < everything
    event = AuditEvent.objects.get(action="archive.hold.update")
    assert event.before["query"] == "" and event.after["query"] == "edited"
    # the API: back to everything; the same scope again changes nothing and writes nothing
    call = api(officer)
    body = {"account_ids": [world.corporate.pk], "query": ""}
    r = call("PUT", f"{BASE}/holds/{hold.pk}/scope", json=body)
    assert r.status_code == 200, r.content
    assert r.json()["query"] == ""
    assert call("PUT", f"{BASE}/holds/{hold.pk}/scope", json=body).status_code == 200
    updates = [a for a in audit_actions_since(start) if a.startswith("archive.hold")]
    assert updates == ["archive.hold.update", "archive.hold.update"]
    unknown = call("PUT", f"{BASE}/holds/{hold.pk}/scope", json={"account_ids": [999999]})
    assert unknown.status_code == 422
    # an auditor may read but not change it; a released hold cannot change
    auditor = api(world.people[Role.AUDITOR])("PUT", f"{BASE}/holds/{hold.pk}/scope", json=body)
    assert auditor.status_code == 403
    call("POST", f"{BASE}/holds/{hold.pk}/release", json={"reason": "closed"})
    assert call("PUT", f"{BASE}/holds/{hold.pk}/scope", json=body).status_code == 409
    page = client.post(
        f"/archive/retention/holds/{hold.pk}/scope/", {"accounts": [world.corporate.pk]}
    )
    assert page.status_code == 409


def test_retention_page_is_read_only_for_auditors(world: Any, login: Any) -> None:
    client = login(world.people[Role.AUDITOR])
    page = client.get("/archive/retention/")
    assert page.status_code == 200 and b"hold-form" not in page.content
    r = client.post(
        "/archive/retention/holds/", {"matter_name": "M", "accounts": [world.corporate.pk]}
    )
    assert r.status_code == 403 and not LegalHold.objects.exists()


def test_cli_report_and_dispose(records: Any) -> None:
    out = io.StringIO()
    as_of = later(4).isoformat()
    call_command("retention", "report", "--as-of", as_of, stdout=out)
    assert "would dispose of 7 record(s)" in out.getvalue()
    assert "business_communication: kept 1095 days" in out.getvalue()
    out = io.StringIO()
    call_command("retention", "dispose", "--dry-run", "--as-of", as_of, stdout=out)
    assert "would dispose of 7" in out.getvalue() and not DisposalRecord.objects.exists()
    out = io.StringIO()
    call_command("retention", "dispose", "--as-of", as_of, stdout=out)
    assert "disposed of 7 record(s)" in out.getvalue()
    assert DisposalRecord.objects.count() == 7
    out = io.StringIO()
    call_command("archive", "verify", stdout=out)
    assert "OK" in out.getvalue()


def test_daily_job_disposes(records: Any, monkeypatch: Any) -> None:
    from vetline.archive import retention_actions
    from vetline.archive.retention_tasks import dispose_expired_job

    real = retention_actions.dispose_expired
    monkeypatch.setattr(
        retention_actions, "dispose_expired", lambda **kw: real(**{**kw, "now": later(4)})
    )
    assert dispose_expired_job.call_local() == 7
    assert DisposalRun.objects.get().trigger == "job"
