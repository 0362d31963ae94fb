"""The account registry: the publishing-access cap, scoping and bad input."""

from __future__ import annotations

import pytest

from vetline.accounts.models import Assignment, OrgSettings, SocialAccount
from vetline.audit.models import AuditEvent
from vetline.conftest import audit_actions_since, last_audit_id
from vetline.identity.roles import Capability, Role

pytestmark = pytest.mark.django_db


def make_publishers(make_person, n: int, prefix: str = "pub"):  # type: ignore[no-untyped-def]
    return [make_person(Role.PUBLISHER, f"{prefix}{i}@example.com") for i in range(n)]


def test_cap_defaults_to_ten_and_the_eleventh_publisher_is_refused_with_the_cap_named(
    world,
    make_person,
    api,  # type: ignore[no-untyped-def]
) -> None:
    admin = world.people[Role.ADMINISTRATOR]
    call = api(admin)
    account = world.other
    publishers = make_publishers(make_person, 11)
    for p in publishers[:10]:
        r = call(
            "POST",
            f"/api/accounts/{account.pk}/assignments",
            {"person_id": p.pk, "capability": "publish"},
        )
        assert r.status_code == 201, r.content
    start = last_audit_id()
    r = call(
        "POST",
        f"/api/accounts/{account.pk}/assignments",
        {"person_id": publishers[10].pk, "capability": "publish"},
    )
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "publisher_cap_reached" and body["field"] == "person"
    assert "the cap of 10" in body["detail"]
    assert Assignment.objects.filter(account=account, capability="publish").count() == 10
    assert audit_actions_since(start) == []  # a refused change leaves no event


def test_org_default_and_per_account_caps(world, make_person, api) -> None:  # type: ignore[no-untyped-def]
    call = api(world.people[Role.ADMINISTRATOR])
    r = call("PUT", "/api/accounts/settings", {"default_publisher_cap": 2})
    assert r.status_code == 200 and OrgSettings.load().default_publisher_cap == 2
    ev = AuditEvent.objects.get(action="accounts.org.update")
    assert ev.before == {"default_publisher_cap": 10} and ev.after == {"default_publisher_cap": 2}
    a, b, c = make_publishers(make_person, 3)
    acc = world.other
    for p in (a, b):
        assert (
            call(
                "POST",
                f"/api/accounts/{acc.pk}/assignments",
                {"person_id": p.pk, "capability": "publish"},
            ).status_code
            == 201
        )
    r = call(
        "POST", f"/api/accounts/{acc.pk}/assignments", {"person_id": c.pk, "capability": "publish"}
    )
    assert r.status_code == 422 and "cap of 2" in r.json()["detail"]
    # A per-account cap overrides the default; lowering below the current count is refused.
    assert call("PATCH", f"/api/accounts/{acc.pk}", {"publisher_cap": 3}).status_code == 200
    assert (
        call(
            "POST",
            f"/api/accounts/{acc.pk}/assignments",
            {"person_id": c.pk, "capability": "publish"},
        ).status_code
        == 201
    )
    r = call("PATCH", f"/api/accounts/{acc.pk}", {"publisher_cap": 1})
    assert r.status_code == 422 and "remove 2" in r.json()["detail"]


def test_cap_does_not_limit_approvers_or_employee_accounts(world, make_person, api) -> None:  # type: ignore[no-untyped-def]
    call = api(world.people[Role.ADMINISTRATOR])
    call("PUT", "/api/accounts/settings", {"default_publisher_cap": 1})
    approvers = [make_person(Role.APPROVER, f"ap{i}@example.com") for i in range(3)]
    for p in approvers:
        assert (
            call(
                "POST",
                f"/api/accounts/{world.other.pk}/assignments",
                {"person_id": p.pk, "capability": "approve"},
            ).status_code
            == 201
        )


def test_assignment_needs_a_role_that_allows_the_capability(world, api) -> None:  # type: ignore[no-untyped-def]
    call = api(world.people[Role.ADMINISTRATOR])
    employee = world.people[Role.EMPLOYEE]
    r = call(
        "POST",
        f"/api/accounts/{world.other.pk}/assignments",
        {"person_id": employee.pk, "capability": "publish"},
    )
    assert r.status_code == 422 and "none of their roles allows it" in r.json()["detail"]


def test_register_account_audits_exact_content(world, api) -> None:  # type: ignore[no-untyped-def]
    admin = world.people[Role.ADMINISTRATOR]
    call = api(admin)
    start = last_audit_id()
    r = call(
        "POST",
        "/api/accounts",
        {
            "network": "bluesky",
            "handle": "acme.bsky.social",
            "kind": "corporate",
            "owner_id": admin.pk,
            "display_name": "Acme",
            "publisher_cap": 4,
        },
        HTTP_USER_AGENT="pytest-agent",
        HTTP_X_REQUEST_ID="req-12345678",
    )
    assert r.status_code == 201, r.content
    assert audit_actions_since(start) == ["accounts.account.register"]
    ev = AuditEvent.objects.get(action="accounts.account.register")
    assert ev.actor_id == admin.pk and admin.email in ev.actor_name
    assert ev.object_type == "accounts.socialaccount" and ev.object_id == str(r.json()["id"])
    assert ev.before is None
    assert ev.after == {
        "network": "bluesky",
        "handle": "acme.bsky.social",
        "display_name": "Acme",
        "kind": "corporate",
        "owner_id": admin.pk,
        "business_unit": "",
        "publisher_cap": 4,
        "is_active": True,
    }
    assert ev.user_agent == "pytest-agent" and ev.request_id == "req-12345678"
    assert ev.channel == "api" and ev.ip == "127.0.0.1"


def test_duplicate_and_invalid_accounts_get_field_errors(world, api) -> None:  # type: ignore[no-untyped-def]
    call = api(world.people[Role.ADMINISTRATOR])
    owner = world.people[Role.ADMINISTRATOR].pk
    r = call(
        "POST",
        "/api/accounts",
        {"network": "x", "handle": "@ACME", "kind": "corporate", "owner_id": owner},
    )
    assert r.status_code == 409 and r.json()["field"] == "handle"
    r = call(
        "POST",
        "/api/accounts",
        {"network": "myspace", "handle": "x", "kind": "corporate", "owner_id": owner},
    )
    assert r.status_code == 422 and "network" in str(r.json()["detail"])
    r = call(
        "POST",
        "/api/accounts",
        {"network": "x", "handle": "   ", "kind": "corporate", "owner_id": owner},
    )
    assert r.status_code == 422 and r.json()["field"] == "handle"
    r = call(
        "POST",
        "/api/accounts",
        {"network": "x", "handle": "@new", "kind": "corporate", "owner_id": 999999},
    )
    assert r.status_code == 422 and r.json()["field"] == "owner_id"
    r = call(
        "POST",
        "/api/accounts",
        {
            "network": "x",
            "handle": "@new",
            "kind": "corporate",
            "owner_id": owner,
            "publisher_cap": 0,
        },
    )
    assert r.status_code == 422
    assert SocialAccount.objects.count() == 3


def test_registration_form_shows_field_errors(world, login) -> None:  # type: ignore[no-untyped-def]
    client = login(world.people[Role.ADMINISTRATOR])
    r = client.post(
        "/accounts/new/",
        {
            "network": "x",
            "handle": "@acme",
            "kind": "corporate",
            "owner": world.people[Role.ADMINISTRATOR].pk,
        },
    )
    assert r.status_code == 422
    assert b"already registered" in r.content
    r = client.post("/accounts/new/", {"network": "nope", "handle": "", "kind": "corporate"})
    assert r.status_code == 422 and b"This field is required" in r.content


def test_scoping_publishers_see_only_assigned_accounts(world, api, login) -> None:  # type: ignore[no-untyped-def]
    publisher = world.people[Role.PUBLISHER]
    call = api(publisher)
    ids = [a["id"] for a in call("GET", "/api/accounts").json()["items"]]
    assert ids == [world.corporate.pk]
    assert call("GET", f"/api/accounts/{world.other.pk}").status_code == 404
    client = login(publisher)
    assert client.get(f"/accounts/{world.other.pk}/").status_code == 404
    assert client.get(f"/accounts/{world.corporate.pk}/").status_code == 200
    employee = world.people[Role.EMPLOYEE]
    ids = [a["id"] for a in api(employee)("GET", "/api/accounts").json()["items"]]
    assert ids == [world.employee_account.pk]


def test_can_act_on_respects_assignment_and_role(world) -> None:  # type: ignore[no-untyped-def]
    from vetline.accounts.selectors import can_act_on

    pub = world.people[Role.PUBLISHER]
    assert can_act_on(pub, world.corporate, Capability.PUBLISH)
    assert not can_act_on(pub, world.other, Capability.PUBLISH)
    assert not can_act_on(pub, world.corporate, Capability.APPROVE)
    assert not can_act_on(world.people[Role.ADMINISTRATOR], world.corporate, Capability.PUBLISH)


def test_revoking_a_role_removes_assignments_that_needed_it(world, api) -> None:  # type: ignore[no-untyped-def]
    pub = world.people[Role.PUBLISHER]
    r = api(world.people[Role.ADMINISTRATOR])("DELETE", f"/api/people/{pub.pk}/roles/publisher")
    assert r.status_code == 204
    assert not Assignment.objects.filter(person=pub).exists()
    ev = AuditEvent.objects.get(action="identity.role.revoke")
    assert {a["capability"] for a in ev.before["assignments"]} == {"publish", "reply"}


def test_lowering_the_default_below_an_account_using_it_is_refused(world, make_person, api) -> None:  # type: ignore[no-untyped-def]
    call = api(world.people[Role.ADMINISTRATOR])
    for p in make_publishers(make_person, 3):
        call(
            "POST",
            f"/api/accounts/{world.other.pk}/assignments",
            {"person_id": p.pk, "capability": "publish"},
        )
    r = call("PUT", "/api/accounts/settings", {"default_publisher_cap": 2})
    assert r.status_code == 422 and "acme-corp (3)" in r.json()["detail"]
    assert OrgSettings.load().default_publisher_cap == 10
    call("PATCH", f"/api/accounts/{world.other.pk}", {"publisher_cap": 5})
    assert call("PUT", "/api/accounts/settings", {"default_publisher_cap": 2}).status_code == 200
    r = call("PATCH", f"/api/accounts/{world.other.pk}", {"use_default_cap": True})
    assert r.status_code == 422 and "lowering the cap to 2" in r.json()["detail"]


def test_personal_accounts_need_an_owner_who_may_own_them(world, api) -> None:  # type: ignore[no-untyped-def]
    call = api(world.people[Role.ADMINISTRATOR])
    body = {"network": "x", "handle": "@someone", "kind": "employee"}
    r = call("POST", "/api/accounts", {**body, "owner_id": world.people[Role.AUDITOR].pk})
    assert r.status_code == 422 and "Employee role" in r.json()["detail"]
    r = call("POST", "/api/accounts", {**body, "owner_id": world.people[Role.EMPLOYEE].pk})
    assert r.status_code == 201
