from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from vetline.identity.roles import Perm, Role, mfa_required_for, permissions_for


class PersonManager(BaseUserManager["Person"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> Person:
        if not email:
            raise ValueError("A person needs an e-mail address.")
        person = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            person.set_password(password)
        else:
            person.set_unusable_password()
        person.save(using=self._db)
        return person

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> Person:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class Person(AbstractUser):
    """Someone who works at (or for) the firm and signs in to Vetline.

    People are never deleted: leaving the company is an offboarding that deactivates them, so
    the audit trail and the archive keep pointing at who they were.
    """

    username = None  # type: ignore[assignment]
    first_name = None  # type: ignore[assignment]
    last_name = None  # type: ignore[assignment]
    email = models.EmailField("e-mail address", unique=True)
    full_name = models.CharField(max_length=200)
    title = models.CharField(max_length=200, blank=True)
    business_unit = models.CharField(max_length=120, blank=True)
    manager = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reports"
    )
    # Bumping the epoch invalidates every session of this person ("sign out everywhere"): it is
    # part of the session auth hash Django checks on each request.
    session_epoch = models.PositiveIntegerField(default=0)
    failed_login_count = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    offboarded_at = models.DateTimeField(null=True, blank=True)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["full_name"]

    objects = PersonManager()  # type: ignore[misc,assignment]

    class Meta:
        ordering = ["full_name"]
        verbose_name = "person"
        verbose_name_plural = "people"

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email

    def get_session_auth_hash(self) -> str:
        return hashlib.sha256(
            f"{super().get_session_auth_hash()}:{self.session_epoch}".encode()
        ).hexdigest()

    # Role helpers. Grants are read once per request and cached on the instance.
    @property
    def roles(self) -> frozenset[Role]:
        cached: frozenset[Role] | None = getattr(self, "_roles_cache", None)
        if cached is None:
            if not self.pk or not self.is_active:
                cached = frozenset()
            else:
                cached = frozenset(Role(r) for r in self.role_grants.values_list("role", flat=True))
            self._roles_cache = cached
        return cached

    def forget_roles(self) -> None:
        self.__dict__.pop("_roles_cache", None)

    @property
    def permissions(self) -> frozenset[Perm]:
        return permissions_for(self.roles)

    def can(self, perm: Perm) -> bool:
        return perm in self.permissions

    @property
    def mfa_required(self) -> bool:
        return mfa_required_for(self.roles)

    @property
    def is_locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > timezone.now()


class RoleGrant(models.Model):
    """A role held by a person, with who granted it and when."""

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="role_grants")
    role = models.CharField(max_length=40, choices=[(r.value, r.label) for r in Role])
    granted_by = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["person", "role"],
                name="identity_rolegrant_unique_role",
                violation_error_message="This person already holds that role.",
            )
        ]
        ordering = ["role"]

    def __str__(self) -> str:
        return f"{self.person} — {Role(self.role).label}"


class TokenScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the token is shown once, at creation."""

    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    token_sha256 = models.CharField(max_length=64)
    scope = models.CharField(max_length=10, choices=TokenScope.choices, default=TokenScope.READ)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"
