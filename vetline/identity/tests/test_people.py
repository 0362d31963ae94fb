"""Offboarding, roles and personal API tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from vetline.accounts.models import Assignment
from vetline.audit.models import AuditEvent
from vetline.conftest import audit_actions_since, last_audit_id
from vetline.identity.models import ApiToken, Person
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db


def test_offboarding_removes_every_access_in_one_audited_step(world, api, api_token) -> None:  # type: ignore[no-untyped-def]
    admin = world.people[Role.ADMINISTRATOR]
    leaver = world.people[Role.PUBLISHER]
    leaver_token = api_token(leaver)
    browser = Client()
    browser.force_login(leaver)
    assert browser.get("/accounts/").status_code == 200
    call = api(admin)
    start = last_audit_id()
    r = call("POST", f"/api/people/{leaver.pk}/offboard", {"reason": "Left the firm"})
    assert r.status_code == 200, r.content
    report = r.json()
    assert report["roles"] == ["publisher"]
    assert {a["capability"] for a in report["assignments"]} == {"publish", "reply"}
    assert len(report["api_tokens"]) == 1 and report["sessions_ended"] is True
    # Exactly one offboarding event, plus the MFA device removal it caused.
    assert audit_actions_since(start) == ["identity.mfa.remove", "identity.person.offboard"]
    ev = AuditEvent.objects.get(action="identity.person.offboard")
    assert ev.actor_id == admin.pk and ev.object_id == str(leaver.pk)
    assert ev.after["reason"] == "Left the firm" and ev.before["roles"] == ["publisher"]
    leaver.refresh_from_db()
    assert not leaver.is_active and leaver.offboarded_at and not leaver.has_usable_password()
    assert not Assignment.objects.filter(person=leaver).exists()
    assert ApiToken.objects.get(person=leaver).revoked_at is not None
    # The session and the token stop working at once.
    assert browser.get("/accounts/").status_code == 302
    r = Client().get("/api/me", HTTP_AUTHORIZATION=f"Bearer {leaver_token}")
    assert r.status_code == 401
    # Offboarding twice is a clear conflict, not a second event.
    assert call("POST", f"/api/people/{leaver.pk}/offboard", {"reason": "again"}).status_code == 409


def test_offboarding_page_shows_what_will_be_and_was_removed(world, login) -> None:  # type: ignore[no-untyped-def]
    client = login(world.people[Role.ADMINISTRATOR])
    leaver = world.people[Role.APPROVER]
    page = client.get(f"/people/{leaver.pk}/offboard/")
    assert b"@acme" in page.content and b"Approver" in page.content
    assert client.post(f"/people/{leaver.pk}/offboard/", {"reason": ""}).status_code == 422
    done = client.post(f"/people/{leaver.pk}/offboard/", {"reason": "Contract ended"})
    assert done.status_code == 200 and b"What was removed" in done.content
    assert b"@acme" in done.content


def test_cannot_offboard_yourself(world, api) -> None:  # type: ignore[no-untyped-def]
    admin = world.people[Role.ADMINISTRATOR]
    r = api(admin)("POST", f"/api/people/{admin.pk}/offboard", {"reason": "x"})
    assert r.status_code == 422


def test_role_grant_and_revoke_are_audited(world, api) -> None:  # type: ignore[no-untyped-def]
    call = api(world.people[Role.ADMINISTRATOR])
    person = world.people[Role.EMPLOYEE]
    start = last_audit_id()
    assert call("POST", f"/api/people/{person.pk}/roles", {"role": "publisher"}).status_code == 201
    assert call("POST", f"/api/people/{person.pk}/roles", {"role": "publisher"}).status_code == 409
    assert call("POST", f"/api/people/{person.pk}/roles", {"role": "pope"}).status_code == 422
    assert call("DELETE", f"/api/people/{person.pk}/roles/publisher").status_code == 204
    assert audit_actions_since(start) == ["identity.role.grant", "identity.role.revoke"]


def test_revoking_a_role_twice_says_so_on_the_page(world) -> None:  # type: ignore[no-untyped-def]
    """A second click finds the role gone: a message on the person's page, not a 404."""
    person = world.people[Role.PUBLISHER]
    browser = Client()
    browser.force_login(world.people[Role.ADMINISTRATOR])
    url = f"/people/{person.pk}/roles/publisher/revoke/"
    first = browser.post(url, follow=True)
    assert first.redirect_chain == [(f"/people/{person.pk}/", 302)]
    assert "Publisher role removed from" in first.content.decode()
    again = browser.post(url, follow=True)
    assert again.redirect_chain == [(f"/people/{person.pk}/", 302)]
    assert "does not hold the Publisher role." in again.content.decode()


def test_create_person_via_api_and_form(world, api, login) -> None:  # type: ignore[no-untyped-def]
    call = api(world.people[Role.ADMINISTRATOR])
    r = call(
        "POST",
        "/api/people",
        {"email": "New@Example.com", "full_name": "New Person", "roles": ["employee"]},
    )
    assert r.status_code == 201 and r.json()["email"] == "new@example.com"
    assert (
        call("POST", "/api/people", {"email": "new@example.com", "full_name": "Dup"}).status_code
        == 409
    )
    assert (
        call("POST", "/api/people", {"email": "not-an-email", "full_name": "X"}).json()["field"]
        == "email"
    )
    client = login(world.people[Role.ADMINISTRATOR])
    r = client.post("/people/new/", {"email": "bad", "full_name": ""})
    assert r.status_code == 422 and b"Enter a valid email address" in r.content


def test_api_tokens_are_hashed_scoped_expiring_and_revocable(world, api_token) -> None:  # type: ignore[no-untyped-def]
    person = world.people[Role.ADMINISTRATOR]
    read = api_token(person, "read")
    row = ApiToken.objects.get(person=person)
    assert read not in (row.token_sha256, row.prefix) and len(row.token_sha256) == 64
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {read}"}
    assert client.get("/api/me", **auth).status_code == 200
    # A read token cannot write.
    r = client.post(
        "/api/people",
        data={"email": "a@b.c", "full_name": "A"},
        content_type="application/json",
        **auth,
    )
    assert r.status_code == 403 and r.json()["code"] == "token_read_only"
    # Tampered, expired and revoked tokens are refused.
    assert client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {read}x").status_code == 401
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/me", **auth).status_code == 401
    write = api_token(person, "write")
    wauth = {"HTTP_AUTHORIZATION": f"Bearer {write}"}
    tid = client.get("/api/tokens", **wauth).json()[0]["id"]
    assert client.delete(f"/api/tokens/{tid}", **wauth).status_code == 204
    assert client.get("/api/me", **wauth).status_code == 401
    actions = list(
        AuditEvent.objects.filter(action__startswith="identity.api_token")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["identity.api_token.create"] * 2 + ["identity.api_token.revoke"]
    assert read not in str(list(AuditEvent.objects.values_list("after", flat=True)))


def test_token_page_shows_the_secret_once(world, login) -> None:  # type: ignore[no-untyped-def]
    client = login(world.people[Role.EMPLOYEE])
    r = client.post("/people/me/tokens/", {"name": "cli", "scope": "read", "expires_in_days": 30})
    assert r.status_code == 200
    secret = r.context["issued"].secret
    assert secret.encode() in r.content
    assert secret.encode() not in client.get("/people/me/tokens/").content
    bad = client.post("/people/me/tokens/", {"name": "", "scope": "root", "expires_in_days": 0})
    assert bad.status_code == 422


def test_person_without_mfa_cannot_mint_tokens_when_role_requires_it(make_person) -> None:  # type: ignore[no-untyped-def]
    from vetline.core.errors import ValidationFailed
    from vetline.identity.actions import create_api_token
    from vetline.identity.models import TokenScope

    p: Person = make_person(Role.APPROVER, enrol=False)
    with pytest.raises(ValidationFailed, match="two-factor"):
        create_api_token(actor=p, name="x", scope=TokenScope.READ, expires_in_days=1)
