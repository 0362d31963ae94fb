"""The audit trail is append-only at every level, filterable and exportable."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.admin.sites import site
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory

from vetline.audit.actions import record
from vetline.audit.models import AppendOnlyError, AuditEvent
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(world) -> AuditEvent:  # type: ignore[no-untyped-def]
    with transaction.atomic():
        return record(
            action="test.thing.happen",
            actor=world.people[Role.ADMINISTRATOR],
            object_type="test.thing",
            object_id="1",
            after={"x": 1},
        )


def test_orm_refuses_update_and_delete(event: AuditEvent) -> None:
    event.action = "test.tampered"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET action = 'forged'",
        "DELETE FROM audit_auditevent",
    ],
)
def test_database_triggers_refuse_raw_sql(event: AuditEvent, sql: str) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert AuditEvent.objects.get(pk=event.pk).action == "test.thing.happen"


def test_admin_offers_no_add_change_or_delete(event: AuditEvent, world) -> None:  # type: ignore[no-untyped-def]
    admin_cls = site._registry[AuditEvent]
    request = RequestFactory().get("/admin/")
    request.user = world.people[Role.ADMINISTRATOR]
    assert not admin_cls.has_add_permission(request)
    assert not admin_cls.has_change_permission(request, event)
    assert not admin_cls.has_delete_permission(request, event)
    assert admin_cls.get_actions(request) == {}


def test_api_has_no_write_operation_on_events() -> None:
    from vetline.api import api

    schema = api.get_openapi_schema()
    audit_paths = {p: ops for p, ops in schema["paths"].items() if p.startswith("/api/audit")}
    assert audit_paths
    for ops in audit_paths.values():
        assert set(ops) <= {"get"}


def test_filters_by_person_action_object_and_date(world, api) -> None:  # type: ignore[no-untyped-def]
    admin = world.people[Role.ADMINISTRATOR]
    call = api(admin)
    call(
        "POST",
        f"/api/accounts/{world.other.pk}/assignments",
        {"person_id": world.people[Role.PUBLISHER].pk, "capability": "publish"},
    )
    call("PUT", "/api/accounts/settings", {"default_publisher_cap": 5})
    auditor = api(world.people[Role.AUDITOR])
    items = auditor("GET", "/api/audit/events?action=accounts.assignment").json()["items"]
    assert [i["action"] for i in items] == ["accounts.assignment.add"]
    items = auditor("GET", "/api/audit/events?action=accounts").json()["items"]
    assert {i["action"] for i in items} == {"accounts.assignment.add", "accounts.org.update"}
    items = auditor("GET", f"/api/audit/events?person={admin.pk}").json()["items"]
    assert {i["actor_id"] for i in items} == {admin.pk}
    items = auditor(
        "GET", f"/api/audit/events?object_type=accounts.socialaccount&object_id={world.other.pk}"
    ).json()["items"]
    assert [i["action"] for i in items] == ["accounts.assignment.add"]
    today = items[0]["occurred_at"][:10]
    assert (
        auditor(
            "GET", f"/api/audit/events?date_from={today}&date_to={today}&action=accounts.org"
        ).json()["count"]
        == 1
    )
    assert (
        auditor("GET", "/api/audit/events?date_from=2000-01-01&date_to=2000-01-02").json()["count"]
        == 0
    )
    assert auditor("GET", "/api/audit/events?date_from=yesterday").status_code == 422


def test_export_csv_and_json_are_complete_and_audited(world, api) -> None:  # type: ignore[no-untyped-def]
    auditor = world.people[Role.AUDITOR]
    call = api(auditor)
    with transaction.atomic():
        record(action="test.formula", actor=None, object_repr='=HYPERLINK("http://evil")')
    before = AuditEvent.objects.count()
    r = call("GET", "/api/audit/export?format=csv")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert len(rows) == before + 1  # the export records itself first
    assert rows[0]["action"] == "audit.export"
    formula = next(row for row in rows if row["action"] == "test.formula")
    assert formula["object_repr"].startswith("'=")  # no spreadsheet formula injection
    r = call("GET", "/api/audit/export?format=json&action=audit.export")
    data = json.loads(b"".join(r.streaming_content))
    assert [d["action"] for d in data] == ["audit.export", "audit.export"]
    assert data[0]["after"]["format"] == "json"


def test_export_requires_the_export_permission(world, api, login) -> None:  # type: ignore[no-untyped-def]
    assert api(world.people[Role.ADMINISTRATOR])("GET", "/api/audit/export").status_code == 403
    client = login(world.people[Role.COMPLIANCE_OFFICER])
    r = client.get("/audit/export/?format=json&action=identity")
    assert r.status_code == 200
    assert client.get("/audit/export/?format=xml").status_code == 422
    assert client.get("/audit/export/?date_from=nonsense").status_code == 422


def test_audit_page_filters_and_paginates(world, login) -> None:  # type: ignore[no-untyped-def]
    with transaction.atomic():
        for i in range(60):
            record(action="test.bulk", actor=None, object_id=str(i))
    client = login(world.people[Role.COMPLIANCE_OFFICER])
    r = client.get("/audit/?action=test.bulk")
    assert r.status_code == 200 and r.context["page_obj"].paginator.count == 60
    assert len(r.context["page_obj"]) == 50 and b"Page 1 of 2" in r.content
    r2 = client.get("/audit/?action=test.bulk&page=2")
    assert len(r2.context["page_obj"]) == 10
    bad = client.get("/audit/?date_from=2026-02-01&date_to=2026-01-01")
    assert bad.status_code == 422 and "must be on or after" in bad.content.decode()


@pytest.mark.django_db(transaction=True)
def test_record_outside_a_transaction_is_refused() -> None:
    with pytest.raises(RuntimeError, match="outside a transaction"):
        record(action="test.loose", actor=None)
    assert not AuditEvent.objects.filter(action="test.loose").exists()
