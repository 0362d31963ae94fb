"""Sign-in with TOTP, mandatory MFA enrolment, lock-out, idle timeout, sign-out everywhere."""

from __future__ import annotations

import time

import pytest
from django.test import Client, override_settings

from vetline.audit.models import AuditEvent
from vetline.conftest import PASSWORD, audit_actions_since, last_audit_id, totp_now, totp_secret_for
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db


def sign_in(client: Client, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post("/auth/login/", {"login": email, "password": password})


def test_sign_in_asks_for_totp_and_audits_success(client: Client, make_person) -> None:  # type: ignore[no-untyped-def]
    person = make_person(Role.PUBLISHER)
    start = last_audit_id()
    response = sign_in(client, person.email)
    assert response.status_code == 302
    assert response["Location"].startswith("/auth/2fa/authenticate")
    # Not signed in yet: the password alone is not enough.
    assert client.get("/accounts/").status_code == 302
    wrong = client.post("/auth/2fa/authenticate/", {"code": "000000"})
    assert wrong.status_code == 200 and b"Incorrect code" in wrong.content
    ok = client.post("/auth/2fa/authenticate/", {"code": totp_now(totp_secret_for(person.email))})
    assert ok.status_code == 302
    assert client.get("/accounts/").status_code == 200
    assert audit_actions_since(start) == ["identity.login.success"]
    event = AuditEvent.objects.get(action="identity.login.success")
    assert event.actor_id == person.pk and event.ip == "127.0.0.1" and event.request_id
    client.post("/auth/logout/")
    assert audit_actions_since(start)[-1] == "identity.logout"


@pytest.mark.parametrize(
    ("role", "required"),
    [
        (Role.ADMINISTRATOR, True),
        (Role.COMPLIANCE_OFFICER, True),
        (Role.APPROVER, True),
        (Role.PUBLISHER, True),
        (Role.AUDITOR, True),
        (Role.SUPERVISOR, False),
        (Role.EMPLOYEE, False),
        (Role.EXECUTIVE, False),
        (Role.COMMUNITY_MONITOR, False),
    ],
)
def test_mfa_is_mandatory_for_roles_that_publish_approve_administer_or_export(
    client: Client,
    make_person,
    role: Role,
    required: bool,  # type: ignore[no-untyped-def]
) -> None:
    person = make_person(role, enrol=False)
    assert sign_in(client, person.email).status_code == 302
    page = client.get("/accounts/")
    api = client.get("/api/me")
    if required:
        assert page.status_code == 302 and page["Location"] == "/auth/2fa/totp/activate/"
        assert api.status_code == 403 and api.json()["code"] == "mfa_enrolment_required"
        assert client.get("/auth/2fa/totp/activate/").status_code == 200  # can still enrol
    else:
        assert page.status_code == 200 and api.status_code == 200


def test_enrolling_totp_unlocks_the_app_and_is_audited(client: Client, make_person) -> None:  # type: ignore[no-untyped-def]
    person = make_person(Role.APPROVER, enrol=False)
    sign_in(client, person.email)
    page = client.get("/auth/2fa/totp/activate/")
    secret = page.context["form"].secret
    start = last_audit_id()
    response = client.post("/auth/2fa/totp/activate/", {"code": totp_now(secret)})
    assert response.status_code == 302
    assert client.get("/accounts/").status_code == 200
    assert "identity.mfa.add" in audit_actions_since(start)


@override_settings(VETLINE_LOCKOUT_THRESHOLD=3, VETLINE_LOCKOUT_MINUTES=15)
def test_repeated_failures_lock_the_person_out_even_with_the_right_password(
    client: Client,
    make_person,  # type: ignore[no-untyped-def]
) -> None:
    person = make_person(Role.EMPLOYEE)
    start = last_audit_id()
    for _ in range(3):
        r = sign_in(client, person.email, "wrong-password")
        assert r.status_code == 200
    assert audit_actions_since(start) == ["identity.login.failed"] * 3 + ["identity.login.locked"]
    person.refresh_from_db()
    assert person.is_locked and person.failed_login_count == 3
    r = sign_in(client, person.email, PASSWORD)
    assert r.status_code == 200
    assert b"locked after repeated failed sign-ins" in r.content
    assert client.get("/accounts/").status_code == 302


def test_an_administrator_can_unlock(client: Client, make_person, login) -> None:  # type: ignore[no-untyped-def]
    admin = make_person(Role.ADMINISTRATOR)
    person = make_person(Role.EMPLOYEE)
    from django.utils import timezone

    person.locked_until = timezone.now() + timezone.timedelta(minutes=10)
    person.failed_login_count = 5
    person.save()
    login(admin).post(f"/people/{person.pk}/unlock/")
    person.refresh_from_db()
    assert not person.is_locked and person.failed_login_count == 0
    assert (
        AuditEvent.objects.filter(action="identity.login.unlock", object_id=str(person.pk)).count()
        == 1
    )


def test_failed_sign_in_for_unknown_email_is_audited_without_revealing(client: Client) -> None:
    r = sign_in(client, "nobody@nowhere.example", "whatever-password")
    assert r.status_code == 200
    event = AuditEvent.objects.get(action="identity.login.failed")
    assert event.after == {"identifier": "nobody@nowhere.example", "known": False}
    assert "whatever-password" not in str(event.after)


@override_settings(VETLINE_IDLE_TIMEOUT_MINUTES=30)
def test_idle_session_times_out(client: Client, make_person) -> None:  # type: ignore[no-untyped-def]
    person = make_person(Role.EMPLOYEE)
    client.force_login(person)
    assert client.get("/accounts/").status_code == 200
    session = client.session
    session["vetline_last_seen"] = time.time() - 31 * 60
    session.save()
    r = client.get("/accounts/")
    assert r.status_code == 302 and r["Location"].startswith("/auth/login/")
    assert client.get("/accounts/").status_code == 302  # really signed out


def test_sign_out_everywhere_ends_other_sessions_but_keeps_this_one(make_person) -> None:  # type: ignore[no-untyped-def]
    person = make_person(Role.EMPLOYEE)
    laptop, phone = Client(), Client()
    laptop.force_login(person)
    phone.force_login(person)
    assert phone.get("/accounts/").status_code == 200
    r = laptop.post("/people/me/signout-everywhere/")
    assert r.status_code == 302
    assert laptop.get("/accounts/").status_code == 200
    assert phone.get("/accounts/").status_code == 302
    assert AuditEvent.objects.filter(action="identity.session.revoke_all").count() == 1


def test_self_sign_up_is_closed(client: Client) -> None:
    r = client.get("/auth/signup/")
    assert b"Sign Up Closed" in r.content or r.status_code in (403, 404)


def test_recovery_code_signs_in_once(client: Client, make_person) -> None:  # type: ignore[no-untyped-def]
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    person = make_person(Role.COMPLIANCE_OFFICER)
    codes = RecoveryCodes.activate(person).get_unused_codes()
    sign_in(client, person.email)
    r = client.post("/auth/2fa/authenticate/", {"code": codes[0]})
    assert r.status_code == 302 and client.get("/audit/").status_code == 200
    client.post("/auth/logout/")
    sign_in(client, person.email)
    again = client.post("/auth/2fa/authenticate/", {"code": codes[0]})
    assert again.status_code == 200  # a used recovery code does not work twice


def test_password_change_is_audited_without_the_password(
    client: Client,
    make_person,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    person = make_person(Role.EMPLOYEE, enrol=False)
    sign_in(client, person.email)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            "/auth/password/change/",
            {
                "oldpassword": PASSWORD,
                "password1": "a-brand-new-passphrase-42",
                "password2": "a-brand-new-passphrase-42",
            },
        )
    assert r.status_code == 302
    event = AuditEvent.objects.get(action="identity.password.change")
    assert event.actor_id == person.pk and "passphrase" not in str(event.after)


def test_email_self_service_is_not_exposed(client: Client, make_person) -> None:  # type: ignore[no-untyped-def]
    client.force_login(make_person(Role.EMPLOYEE))
    assert client.get("/auth/email/").status_code == 404
