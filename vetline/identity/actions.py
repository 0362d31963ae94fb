"""Writes about people: roles, tokens, sign-in events, lock-out and offboarding."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from vetline.audit.actions import record
from vetline.core.errors import Conflict, NotFound, ValidationFailed
from vetline.identity.models import ApiToken, Person, RoleGrant, TokenScope
from vetline.identity.permissions import require
from vetline.identity.roles import Perm, Role

TOKEN_PREFIX = "vtl_"


def _person_snapshot(person: Person) -> dict[str, Any]:
    return {
        "email": person.email,
        "full_name": person.full_name,
        "title": person.title,
        "business_unit": person.business_unit,
        "is_active": person.is_active,
        "roles": sorted(person.role_grants.values_list("role", flat=True)) if person.pk else [],
    }


def create_person(
    *,
    actor: Person,
    email: str,
    full_name: str,
    roles: list[Role],
    title: str = "",
    business_unit: str = "",
    password: str | None = None,
) -> Person:
    require(actor, Perm.PEOPLE_MANAGE)
    email = email.strip().lower()
    if not email or "@" not in email:
        raise ValidationFailed("Enter a valid e-mail address.", field="email")
    if not full_name.strip():
        raise ValidationFailed("Enter the person's name.", field="full_name")
    with transaction.atomic():
        if Person.objects.filter(email__iexact=email).exists():
            raise Conflict("Someone with this e-mail address already exists.", field="email")
        person = Person.objects.create_user(
            email=email,
            password=password,
            full_name=full_name.strip(),
            title=title.strip(),
            business_unit=business_unit.strip(),
        )
        for role in set(roles):
            RoleGrant.objects.create(person=person, role=role.value, granted_by=actor)
        record(
            action="identity.person.create", actor=actor, obj=person, after=_person_snapshot(person)
        )
    return person


def grant_role(*, actor: Person, person: Person, role: Role) -> RoleGrant:
    require(actor, Perm.PEOPLE_MANAGE)
    if not person.is_active:
        raise ValidationFailed("This person has been offboarded; roles cannot be granted.")
    with transaction.atomic():
        try:
            with transaction.atomic():
                grant = RoleGrant.objects.create(person=person, role=role.value, granted_by=actor)
        except IntegrityError as exc:
            raise Conflict(f"{person} already holds the {role.label} role.") from exc
        record(action="identity.role.grant", actor=actor, obj=person, after={"role": role.value})
    person.forget_roles()
    return grant


def revoke_role(*, actor: Person, person: Person, role: Role) -> None:
    """Removing a role also removes the account assignments that needed it."""
    from vetline.accounts.models import Assignment
    from vetline.identity.roles import Capability, permissions_for

    require(actor, Perm.PEOPLE_MANAGE)
    with transaction.atomic():
        grant = RoleGrant.objects.select_for_update().filter(person=person, role=role.value).first()
        if grant is None:
            raise NotFound(f"{person} does not hold the {role.label} role.")
        if person.pk == actor.pk and role is Role.ADMINISTRATOR:
            raise ValidationFailed("You cannot remove your own Administrator role.")
        grant.delete()
        remaining = permissions_for(
            {
                Role(r)
                for r in RoleGrant.objects.filter(person=person).values_list("role", flat=True)
            }
        )
        orphaned = [
            a
            for a in Assignment.objects.filter(person=person).select_related("account")
            if Capability(a.capability).required_permission not in remaining
        ]
        removed = [
            {"account": str(a.account), "account_id": a.account_id, "capability": a.capability}
            for a in orphaned
        ]
        Assignment.objects.filter(pk__in=[a.pk for a in orphaned]).delete()
        record(
            action="identity.role.revoke",
            actor=actor,
            obj=person,
            before={"role": role.value, "assignments": removed},
        )
    person.forget_roles()


def update_person(
    *, actor: Person, person: Person, full_name: str, title: str, business_unit: str
) -> Person:
    require(actor, Perm.PEOPLE_MANAGE)
    with transaction.atomic():
        before = _person_snapshot(person)
        person.full_name = full_name.strip() or person.full_name
        person.title = title.strip()
        person.business_unit = business_unit.strip()
        person.save(update_fields=["full_name", "title", "business_unit"])
        record(
            action="identity.person.update",
            actor=actor,
            obj=person,
            before=before,
            after=_person_snapshot(person),
        )
    return person


@dataclass(frozen=True)
class OffboardingReport:
    roles: list[str]
    assignments: list[dict[str, Any]]
    api_tokens: list[str]
    mfa_authenticators: int
    sessions_ended: bool
    accounts_still_owned: list[str]


def offboard_person(*, actor: Person, person: Person, reason: str) -> OffboardingReport:
    """Leaving the company: remove every access in one step and say what was removed."""
    from allauth.mfa.models import Authenticator

    from vetline.accounts.models import Assignment

    require(actor, Perm.PEOPLE_MANAGE)
    if person.pk == actor.pk:
        raise ValidationFailed("You cannot offboard yourself.")
    if not reason.strip():
        raise ValidationFailed("Give a reason for the offboarding.", field="reason")
    now = timezone.now()
    with transaction.atomic():
        person = Person.objects.select_for_update().get(pk=person.pk)
        if person.offboarded_at is not None:
            raise Conflict(f"{person} was already offboarded on {person.offboarded_at:%Y-%m-%d}.")
        roles = sorted(RoleGrant.objects.filter(person=person).values_list("role", flat=True))
        assignments = [
            {"account": str(a.account), "account_id": a.account_id, "capability": a.capability}
            for a in Assignment.objects.filter(person=person).select_related("account")
        ]
        tokens = list(
            ApiToken.objects.filter(person=person, revoked_at__isnull=True).values_list(
                "prefix", flat=True
            )
        )
        RoleGrant.objects.filter(person=person).delete()
        Assignment.objects.filter(person=person).delete()
        ApiToken.objects.filter(person=person, revoked_at__isnull=True).update(revoked_at=now)
        mfa_count, _ = Authenticator.objects.filter(user=person).delete()
        person.is_active = False
        person.offboarded_at = now
        person.session_epoch = F("session_epoch") + 1
        person.set_unusable_password()
        person.save(update_fields=["is_active", "offboarded_at", "session_epoch", "password"])
        owned = [str(a) for a in person.owned_accounts.filter(is_active=True)]
        report = OffboardingReport(
            roles=roles,
            assignments=assignments,
            api_tokens=tokens,
            mfa_authenticators=mfa_count,
            sessions_ended=True,
            accounts_still_owned=owned,
        )
        record(
            action="identity.person.offboard",
            actor=actor,
            obj=person,
            before={
                "is_active": True,
                "roles": roles,
                "assignments": assignments,
                "api_tokens": tokens,
                "mfa_authenticators": mfa_count,
            },
            after={
                "is_active": False,
                "reason": reason.strip(),
                "sessions_ended": True,
                "accounts_still_owned": owned,
            },
        )
    person.refresh_from_db()
    person.forget_roles()
    return report


def sign_out_everywhere(*, actor: Person, person: Person) -> None:
    """End every session of ``person``. People may do it for themselves; administrators for
    anyone."""
    if actor.pk != person.pk:
        require(actor, Perm.PEOPLE_MANAGE)
    with transaction.atomic():
        Person.objects.filter(pk=person.pk).update(session_epoch=F("session_epoch") + 1)
        record(action="identity.session.revoke_all", actor=actor, obj=person)
    person.refresh_from_db(fields=["session_epoch"])


# --- Sign-in events and lock-out -------------------------------------------------------------


def record_sign_in(*, person: Person) -> None:
    with transaction.atomic():
        Person.objects.filter(pk=person.pk).update(failed_login_count=0, locked_until=None)
        record(action="identity.login.success", actor=person, obj=person)


def record_sign_out(*, person: Person | None) -> None:
    if person is None or not person.pk:
        return
    with transaction.atomic():
        record(action="identity.logout", actor=person, obj=person)


def record_failed_sign_in(*, identifier: str) -> Person | None:
    """Count a failed attempt against the person (if the identifier names one) and lock them
    out after ``VETLINE_LOCKOUT_THRESHOLD`` consecutive failures."""
    identifier = (identifier or "").strip().lower()[:254]
    with transaction.atomic():
        person = Person.objects.select_for_update().filter(email__iexact=identifier).first()
        if person is None:
            record(
                action="identity.login.failed",
                actor=None,
                object_type="identity.person",
                object_repr=identifier,
                after={"identifier": identifier, "known": False},
            )
            return None
        person.failed_login_count += 1
        locked = person.failed_login_count >= settings.VETLINE_LOCKOUT_THRESHOLD
        if locked:
            person.locked_until = timezone.now() + timedelta(
                minutes=settings.VETLINE_LOCKOUT_MINUTES
            )
        person.save(update_fields=["failed_login_count", "locked_until"])
        record(
            action="identity.login.failed",
            actor=None,
            obj=person,
            after={"identifier": identifier, "failed_count": person.failed_login_count},
        )
        if locked:
            record(
                action="identity.login.locked",
                actor=None,
                obj=person,
                after={
                    "locked_until": person.locked_until,
                    "failed_count": person.failed_login_count,
                },
            )
    return person


def unlock_person(*, actor: Person, person: Person) -> None:
    require(actor, Perm.PEOPLE_MANAGE)
    with transaction.atomic():
        before = {"failed_count": person.failed_login_count, "locked_until": person.locked_until}
        Person.objects.filter(pk=person.pk).update(failed_login_count=0, locked_until=None)
        record(action="identity.login.unlock", actor=actor, obj=person, before=before)
    person.refresh_from_db()


def record_mfa_change(*, person: Person, action: str, detail: dict[str, Any]) -> None:
    """Record a sign-in credential change (MFA device, password) made through allauth's own
    views. MFA device changes are recorded inside the transaction that made them."""
    with transaction.atomic():
        record(action=action, actor=person, obj=person, after=detail)


# --- API tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown to the person once, never stored


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_token(
    *, actor: Person, name: str, scope: TokenScope, expires_in_days: int
) -> IssuedToken:
    if not actor.is_active:
        raise ValidationFailed("Offboarded people cannot create tokens.")
    if actor.mfa_required and not has_totp(actor):
        raise ValidationFailed("Enrol in two-factor authentication before creating API tokens.")
    name = name.strip()
    if not name:
        raise ValidationFailed("Give the token a name.", field="name")
    max_days = settings.VETLINE_API_TOKEN_MAX_DAYS
    if not 1 <= expires_in_days <= max_days:
        raise ValidationFailed(
            f"A token must expire within 1 to {max_days} days.", field="expires_in_days"
        )
    prefix = secrets.token_hex(6)
    secret = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(
            person=actor,
            name=name[:100],
            prefix=prefix,
            token_sha256=_hash_token(secret),
            scope=scope,
            expires_at=timezone.now() + timedelta(days=expires_in_days),
        )
        record(
            action="identity.api_token.create",
            actor=actor,
            obj=token,
            after={
                "name": token.name,
                "scope": token.scope,
                "expires_at": token.expires_at,
                "prefix": prefix,
            },
        )
    return IssuedToken(token=token, secret=secret)


def revoke_api_token(*, actor: Person, token: ApiToken) -> None:
    if token.person_id != actor.pk:
        require(actor, Perm.PEOPLE_MANAGE)
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is not None:
            raise Conflict("This token is already revoked.")
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(
            action="identity.api_token.revoke",
            actor=actor,
            obj=token,
            after={"prefix": token.prefix},
        )


def authenticate_token(raw: str) -> ApiToken | None:
    """Resolve a bearer token to its row, or None. Constant-time on the secret part."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    prefix = raw[len(TOKEN_PREFIX) :].split("_", 1)[0]
    token = ApiToken.objects.select_related("person").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.token_sha256, _hash_token(raw)):
        return None
    if not token.is_usable or not token.person.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def has_totp(person: Person) -> bool:
    from allauth.mfa.models import Authenticator

    enrolled: bool = Authenticator.objects.filter(
        user=person, type=Authenticator.Type.TOTP
    ).exists()
    return enrolled
