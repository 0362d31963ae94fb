"""Writes to the account registry: registering accounts, assignments, caps and credentials."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from vetline.accounts.models import (
    AccountKind,
    Assignment,
    Credential,
    CredentialKind,
    Network,
    OrgSettings,
    SocialAccount,
)
from vetline.accounts.vault import Vault
from vetline.audit.actions import record
from vetline.core.errors import Conflict, NotFound, ValidationFailed
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Capability, Perm

MAX_SECRET_LENGTH = 16_384


def vault() -> Vault:
    return Vault(settings.VETLINE_VAULT_KEYS)


def _snapshot(account: SocialAccount) -> dict[str, Any]:
    return {
        "network": account.network,
        "handle": account.handle,
        "display_name": account.display_name,
        "kind": account.kind,
        "owner_id": account.owner_id,
        "business_unit": account.business_unit,
        "publisher_cap": account.publisher_cap,
        "is_active": account.is_active,
    }


def _check_owner(owner: Person, kind: AccountKind | str) -> None:
    if not owner.is_active:
        raise ValidationFailed(f"{owner} has been offboarded.", field="owner")
    if kind == AccountKind.EMPLOYEE and not owner.can(Perm.OWN_ACCOUNTS):
        raise ValidationFailed(
            f"{owner} cannot own a personal-for-business account: give them the Employee "
            "role first.",
            field="owner",
        )


def _check_cap(cap: int | None) -> None:
    if cap is not None and not 1 <= cap <= 1000:
        raise ValidationFailed(
            "The publisher cap must be between 1 and 1000.", field="publisher_cap"
        )


def register_account(
    *,
    actor: Person,
    network: Network,
    handle: str,
    kind: AccountKind,
    owner: Person,
    display_name: str = "",
    business_unit: str = "",
    publisher_cap: int | None = None,
) -> SocialAccount:
    require(actor, Perm.ACCOUNTS_MANAGE)
    handle = handle.strip()
    if not handle:
        raise ValidationFailed("Enter the account's handle.", field="handle")
    if len(handle) > 200:
        raise ValidationFailed("The handle is too long (200 characters at most).", field="handle")
    _check_owner(owner, kind)
    _check_cap(publisher_cap)
    with transaction.atomic():
        if SocialAccount.objects.filter(network=network, handle__iexact=handle).exists():
            raise Conflict("This account is already registered on that network.", field="handle")
        account = SocialAccount.objects.create(
            network=network,
            handle=handle,
            kind=kind,
            owner=owner,
            display_name=display_name.strip()[:200],
            business_unit=business_unit.strip()[:120],
            publisher_cap=publisher_cap,
        )
        record(
            action="accounts.account.register", actor=actor, obj=account, after=_snapshot(account)
        )
    return account


def update_account(
    *,
    actor: Person,
    account: SocialAccount,
    display_name: str,
    business_unit: str,
    owner: Person,
    publisher_cap: int | None,
    is_active: bool,
) -> SocialAccount:
    require(actor, Perm.ACCOUNTS_MANAGE)
    _check_cap(publisher_cap)
    with transaction.atomic():
        org = _locked_org()
        account = SocialAccount.objects.select_for_update().get(pk=account.pk)
        before = _snapshot(account)
        effective = org.default_publisher_cap if publisher_cap is None else publisher_cap
        current = _publisher_count(account)
        if account.is_corporate and current > effective:
            raise ValidationFailed(
                f"{current} publishers are assigned; remove {current - effective} "
                f"before lowering the cap to {effective}.",
                field="publisher_cap",
            )
        if owner.pk != account.owner_id:
            _check_owner(owner, account.kind)
        account.display_name = display_name.strip()[:200]
        account.business_unit = business_unit.strip()[:120]
        account.owner = owner
        account.publisher_cap = publisher_cap
        account.is_active = is_active
        account.save()
        record(
            action="accounts.account.update",
            actor=actor,
            obj=account,
            before=before,
            after=_snapshot(account),
        )
    return account


def assign_person(
    *, actor: Person, account: SocialAccount, person: Person, capability: Capability
) -> Assignment:
    """Give ``person`` a capability on ``account``. Enforces the publishing-access cap under a
    row lock on the account, so two concurrent assignments cannot both take the last seat."""
    require(actor, Perm.ACCOUNTS_MANAGE)
    if not person.is_active:
        raise ValidationFailed(f"{person} has been offboarded.", field="person")
    if not person.can(capability.required_permission):
        raise ValidationFailed(
            f"{person} cannot be assigned to {capability.value}: none of their roles allows it.",
            field="person",
        )
    with transaction.atomic():
        org = _locked_org()
        account = SocialAccount.objects.select_for_update().get(pk=account.pk)
        if not account.is_active:
            raise ValidationFailed("This account is deactivated.")
        if capability is Capability.PUBLISH and account.is_corporate:
            cap = account.effective_publisher_cap(org)
            current = _publisher_count(account)
            if current >= cap:
                raise ValidationFailed(
                    f"{account} already has {current} authorized publishers, the cap of {cap}. "
                    f"Remove one, or raise the cap, before adding another.",
                    field="person",
                    code="publisher_cap_reached",
                )
        try:
            with transaction.atomic():
                assignment = Assignment.objects.create(
                    account=account,
                    person=person,
                    capability=capability.value,
                    assigned_by=actor,
                )
        except IntegrityError as exc:
            raise Conflict(f"{person} can already {capability.value} on {account}.") from exc
        record(
            action="accounts.assignment.add",
            actor=actor,
            obj=account,
            after={"person_id": person.pk, "person": str(person), "capability": capability.value},
        )
    return assignment


def remove_assignment(*, actor: Person, assignment: Assignment) -> None:
    require(actor, Perm.ACCOUNTS_MANAGE)
    with transaction.atomic():
        account = SocialAccount.objects.select_for_update().get(pk=assignment.account_id)
        deleted, _ = Assignment.objects.filter(pk=assignment.pk).delete()
        if not deleted:
            raise NotFound("That assignment no longer exists.")
        record(
            action="accounts.assignment.remove",
            actor=actor,
            obj=account,
            before={
                "person_id": assignment.person_id,
                "person": str(assignment.person),
                "capability": assignment.capability,
            },
        )


def _locked_org() -> OrgSettings:
    """The organisation row, locked. Taken before any account row, in every action that
    depends on the default cap, so the order of locks is always the same."""
    org = OrgSettings.load()
    return OrgSettings.objects.select_for_update().get(pk=org.pk)


def _publisher_count(account: SocialAccount) -> int:
    return account.assignments.filter(capability=Capability.PUBLISH.value).count()


def set_org_publisher_cap(*, actor: Person, cap: int) -> OrgSettings:
    """Change the default cap. Refused if corporate accounts that use the default already have
    more publishers than the new cap: the cap would be broken the moment it is set."""
    require(actor, Perm.ORG_MANAGE)
    _check_cap(cap)
    with transaction.atomic():
        org = _locked_org()
        over = [
            f"{a} ({a.n})"
            for a in SocialAccount.objects.filter(
                kind=AccountKind.CORPORATE, publisher_cap__isnull=True
            )
            .annotate(n=Count("assignments", filter=Q(assignments__capability="publish")))
            .filter(n__gt=cap)
        ]
        if over:
            raise ValidationFailed(
                f"These accounts use the default and already have more than {cap} publishers: "
                f"{', '.join(over)}. Remove publishers or give them their own cap first.",
                field="default_publisher_cap",
            )
        before = {"default_publisher_cap": org.default_publisher_cap}
        org.default_publisher_cap = cap
        org.updated_at = timezone.now()
        org.save()
        record(
            action="accounts.org.update",
            actor=actor,
            obj=org,
            before=before,
            after={"default_publisher_cap": cap},
        )
    return org


# --- Credentials vault -------------------------------------------------------------------------


def set_credential(
    *,
    actor: Person,
    account: SocialAccount,
    kind: CredentialKind,
    secret: str,
    expires_at: datetime | None = None,
) -> Credential:
    """Store (or replace) a credential. The secret never appears in the audit event."""
    require(actor, Perm.CREDENTIALS_MANAGE)
    if not secret or not secret.strip():
        raise ValidationFailed("Enter the credential.", field="secret")
    if len(secret) > MAX_SECRET_LENGTH:
        raise ValidationFailed("The credential is too long.", field="secret")
    v = vault()
    ciphertext = v.encrypt(secret)
    now = timezone.now()
    with transaction.atomic():
        account = SocialAccount.objects.select_for_update().get(pk=account.pk)
        previous = Credential.objects.filter(account=account, kind=kind, revoked_at__isnull=True)
        replaced = list(previous.values_list("pk", flat=True))
        previous.update(revoked_at=now, revoked_by=actor, ciphertext=None)
        credential = Credential.objects.create(
            account=account,
            kind=kind,
            ciphertext=ciphertext,
            key_id=v.primary_key_id,
            set_by=actor,
            expires_at=expires_at,
        )
        record(
            action="accounts.credential.replace" if replaced else "accounts.credential.set",
            actor=actor,
            obj=account,
            after={
                "credential_id": credential.pk,
                "kind": kind.value,
                "replaced_credential_ids": replaced,
                "key_id": v.primary_key_id,
                "expires_at": expires_at,
            },
        )
    return credential


def revoke_credential(*, actor: Person, credential: Credential) -> None:
    """Revocation takes effect at once: the ciphertext is wiped in the same transaction."""
    require(actor, Perm.CREDENTIALS_MANAGE)
    with transaction.atomic():
        credential = Credential.objects.select_for_update().get(pk=credential.pk)
        if credential.revoked_at is not None:
            raise Conflict("This credential is already revoked.")
        credential.revoked_at = timezone.now()
        credential.revoked_by = actor
        credential.ciphertext = None
        credential.save(update_fields=["revoked_at", "revoked_by", "ciphertext"])
        record(
            action="accounts.credential.revoke",
            actor=actor,
            obj=credential.account,
            before={"credential_id": credential.pk, "kind": credential.kind},
        )


def read_secret(*, account: SocialAccount, kind: CredentialKind) -> str:
    """For connectors only (never for display): the decrypted active secret, read fresh from
    the database so that a revocation is honoured at once."""
    credential = Credential.objects.filter(
        account=account, kind=kind, revoked_at__isnull=True
    ).first()
    if credential is None or credential.ciphertext is None:
        raise NotFound(f"{account} has no active {kind.label}.")
    return vault().decrypt(bytes(credential.ciphertext))


def rotate_vault_key(*, actor_name: str = "vetline vault rotate") -> tuple[int, int]:
    """Re-encrypt every active credential, TOTP secret and recovery-code seed under the first
    key of VETLINE_VAULT_KEYS.

    Returns (re-encrypted, already current). Run after putting a new key first in the list;
    when it reports nothing left on old keys, the old key can be removed."""
    from allauth.mfa.models import Authenticator

    from vetline.identity.mfa_adapter import VAULT_PREFIX

    v = vault()
    rotated = current = 0
    with transaction.atomic():
        for auth in Authenticator.objects.select_for_update():
            changed = False
            for field in ("secret", "seed"):
                value = auth.data.get(field)
                if not isinstance(value, str) or not value.startswith(VAULT_PREFIX):
                    continue
                token = value[len(VAULT_PREFIX) :].encode()
                if v.encrypted_with_primary(token):
                    current += 1
                    continue
                auth.data[field] = VAULT_PREFIX + v.rotate(token).decode()
                changed = True
                rotated += 1
            if changed:
                auth.save(update_fields=["data"])
        for cred in Credential.objects.select_for_update().filter(
            revoked_at__isnull=True, ciphertext__isnull=False
        ):
            if cred.key_id == v.primary_key_id:
                current += 1
                continue
            cred.ciphertext = v.rotate(bytes(cred.ciphertext))  # type: ignore[arg-type]
            cred.key_id = v.primary_key_id
            cred.save(update_fields=["ciphertext", "key_id"])
            rotated += 1
        record(
            action="accounts.vault.rotate",
            actor=None,
            actor_name=actor_name,
            object_type="accounts.credential",
            after={
                "rotated": rotated,
                "already_current": current,
                "primary_key_id": v.primary_key_id,
            },
        )
    return rotated, current
