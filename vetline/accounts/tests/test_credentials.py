"""The credentials vault: encrypted at rest, never shown again, revocation at once, rotation."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from vetline.accounts.actions import read_secret, rotate_vault_key
from vetline.accounts.models import Credential, CredentialKind
from vetline.accounts.vault import Vault, VaultError, generate_key
from vetline.audit.models import AuditEvent
from vetline.core.errors import NotFound
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db

SECRET = "EAAB-very-secret-token-7f3a9c1d2e"


def test_secret_never_appears_in_any_response_log_or_audit_event(world, api, login, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    admin = world.people[Role.ADMINISTRATOR]
    acc = world.corporate
    call = api(admin)
    responses = [
        call(
            "POST",
            f"/api/accounts/{acc.pk}/credentials",
            {"kind": "access_token", "secret": SECRET},
        )
    ]
    assert responses[0].status_code == 201
    client = login(admin)
    responses.append(
        client.post(
            f"/accounts/{acc.pk}/credentials/", {"kind": "api_key", "secret": SECRET}, follow=True
        )
    )
    responses += [
        call("GET", f"/api/accounts/{acc.pk}/credentials"),
        call("GET", f"/api/accounts/{acc.pk}"),
        client.get(f"/accounts/{acc.pk}/"),
        client.get("/audit/"),
        client.get("/api/audit/events?limit=100"),
    ]
    for r in responses:
        assert r.status_code == 200 or r.status_code == 201
        assert SECRET.encode() not in r.content
    assert SECRET not in caplog.text
    for ev in AuditEvent.objects.all():
        assert SECRET not in f"{ev.before}{ev.after}{ev.object_repr}"
    # At rest: the database holds ciphertext only.
    with connection.cursor() as cursor:
        cursor.execute("SELECT ciphertext FROM accounts_credential")
        for (blob,) in cursor.fetchall():
            assert SECRET.encode() not in bytes(blob)
    assert read_secret(account=acc, kind=CredentialKind.ACCESS_TOKEN) == SECRET


def test_replace_then_revoke_takes_effect_at_once(world, api) -> None:  # type: ignore[no-untyped-def]
    call = api(world.people[Role.ADMINISTRATOR])
    acc = world.corporate
    first = call(
        "POST", f"/api/accounts/{acc.pk}/credentials", {"kind": "access_token", "secret": "one"}
    ).json()
    second = call(
        "POST", f"/api/accounts/{acc.pk}/credentials", {"kind": "access_token", "secret": "two"}
    ).json()
    assert read_secret(account=acc, kind=CredentialKind.ACCESS_TOKEN) == "two"
    old = Credential.objects.get(pk=first["id"])
    assert old.revoked_at is not None and old.ciphertext is None
    replace = AuditEvent.objects.get(action="accounts.credential.replace")
    assert replace.after["replaced_credential_ids"] == [first["id"]]
    r = call("DELETE", f"/api/accounts/{acc.pk}/credentials/{second['id']}")
    assert r.status_code == 204
    with pytest.raises(NotFound):
        read_secret(account=acc, kind=CredentialKind.ACCESS_TOKEN)
    assert Credential.objects.get(pk=second["id"]).ciphertext is None
    assert call("DELETE", f"/api/accounts/{acc.pk}/credentials/{second['id']}").status_code == 409
    assert [
        e.action
        for e in AuditEvent.objects.filter(action__startswith="accounts.credential").order_by("id")
    ] == ["accounts.credential.set", "accounts.credential.replace", "accounts.credential.revoke"]


def test_only_administrators_manage_credentials(world, api) -> None:  # type: ignore[no-untyped-def]
    for role in (Role.COMPLIANCE_OFFICER, Role.PUBLISHER, Role.AUDITOR):
        r = api(world.people[role])(
            "POST",
            f"/api/accounts/{world.corporate.pk}/credentials",
            {"kind": "access_token", "secret": "x"},
        )
        assert r.status_code == 403, role
    assert not Credential.objects.exists()


def test_key_rotation_reencrypts_credentials_and_totp_secrets(world, api) -> None:  # type: ignore[no-untyped-def]
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    call = api(world.people[Role.ADMINISTRATOR])
    call(
        "POST",
        f"/api/accounts/{world.corporate.pk}/credentials",
        {"kind": "access_token", "secret": SECRET},
    )
    old_key = settings.VETLINE_VAULT_KEYS[0]
    new_key = generate_key()
    totp = Authenticator.objects.filter(type="totp").first()
    assert totp.data["secret"].startswith("vault:")
    with override_settings(VETLINE_VAULT_KEYS=[new_key, old_key]):
        rotated, current = rotate_vault_key()
        assert rotated >= 1 + Authenticator.objects.filter(type="totp").count()
        assert rotate_vault_key() == (0, rotated + current)  # idempotent
    with override_settings(VETLINE_VAULT_KEYS=[new_key]):  # old key removed
        assert read_secret(account=world.corporate, kind=CredentialKind.ACCESS_TOKEN) == SECRET
        totp.refresh_from_db()
        assert TOTP(totp).validate_code("000000") in (True, False)  # decrypts without error
    with override_settings(VETLINE_VAULT_KEYS=[old_key]), pytest.raises(VaultError):
        read_secret(account=world.corporate, kind=CredentialKind.ACCESS_TOKEN)
    assert AuditEvent.objects.filter(action="accounts.vault.rotate").count() == 2


def test_vault_rejects_bad_keys() -> None:
    with pytest.raises(VaultError, match="not a valid Fernet key"):
        Vault(["not-a-key"])
    with pytest.raises(VaultError, match="No vault key"):
        Vault([])
