"""Shared test fixtures: one person per role, a small registry, TOTP helpers, API clients."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.test import Client

os.environ.setdefault("VETLINE_ENV", "test")
# Playwright's sync API runs an event loop in the test thread; the ORM calls made by fixtures
# around it are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from vetline.core.tests.browser_support import (  # noqa: F401  (the browser fixtures, once)
    browser,
    isolated_cache,
    new_page,
    page,
    server,
)
from vetline.identity.roles import Capability, Role

PASSWORD = "correct-horse-battery-staple"


def totp_secret_for(email: str) -> str:
    import base64
    import hashlib

    return base64.b32encode(hashlib.sha256(email.encode()).digest()[:20]).decode()


def totp_now(secret: str, offset_steps: int = 0) -> str:
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    return format_hotp_value(hotp_value(secret, int(time.time()) // 30 + offset_steps))


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Rate-limit counters and used TOTP codes live in the cache; each test starts clean."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def make_person(db: None) -> Callable[..., object]:
    from allauth.mfa.totp.internal.auth import TOTP

    from vetline.identity.models import Person, RoleGrant

    def _make(
        role: Role | None,
        email: str | None = None,
        *,
        enrol: bool = True,
        full_name: str | None = None,
    ) -> Person:
        email = email or f"{role.value if role else 'nobody'}@example.com"
        person = Person.objects.create_user(
            email=email, password=PASSWORD, full_name=full_name or email.split("@")[0].title()
        )
        if role is not None:
            RoleGrant.objects.create(person=person, role=role.value)
        if enrol:
            TOTP.activate(person, totp_secret_for(email))
        return person

    return _make


@dataclass
class World:
    people: dict[Role, object]
    corporate: object  # assigned to the publisher and approver
    other: object  # corporate account nobody in `people` is assigned to
    employee_account: object  # owned by the Employee


@pytest.fixture
def world(make_person: Callable[..., object]) -> World:
    from vetline.accounts.models import AccountKind, Assignment, Network, SocialAccount

    people = {role: make_person(role) for role in Role}
    owner = people[Role.COMPLIANCE_OFFICER]
    corporate = SocialAccount.objects.create(
        network=Network.X,
        handle="@acme",
        kind=AccountKind.CORPORATE,
        owner=owner,
        display_name="Acme",
    )
    other = SocialAccount.objects.create(
        network=Network.LINKEDIN, handle="acme-corp", kind=AccountKind.CORPORATE, owner=owner
    )
    employee_account = SocialAccount.objects.create(
        network=Network.LINKEDIN,
        handle="jane-advisor",
        kind=AccountKind.EMPLOYEE,
        owner=people[Role.EMPLOYEE],
    )
    for role, cap in (
        (Role.PUBLISHER, Capability.PUBLISH),
        (Role.PUBLISHER, Capability.REPLY),
        (Role.APPROVER, Capability.APPROVE),
    ):
        Assignment.objects.create(account=corporate, person=people[role], capability=cap.value)
    return World(people=people, corporate=corporate, other=other, employee_account=employee_account)


@pytest.fixture
def login(client: Client) -> Callable[[object], Client]:
    def _login(person: object) -> Client:
        client.force_login(person)  # type: ignore[arg-type]
        return client

    return _login


@pytest.fixture
def api_token() -> Callable[..., str]:
    """A real API token for a person, created through the action."""

    def _token(person: object, scope: str = "write") -> str:
        from vetline.core.context import RequestContext, use_context
        from vetline.identity.actions import create_api_token
        from vetline.identity.models import TokenScope

        with use_context(RequestContext(channel="test")):
            return create_api_token(
                actor=person,
                name="test",
                scope=TokenScope(scope),  # type: ignore[arg-type]
                expires_in_days=30,
            ).secret

    return _token


@pytest.fixture
def api(client: Client, api_token: Callable[..., str]) -> Callable[..., Callable[..., object]]:
    """api(person)(method, path, json=None) -> response, authenticated with a bearer token."""
    import json as jsonlib

    def _for(person: object, scope: str = "write") -> Callable[..., object]:
        token = api_token(person, scope)

        def call(method: str, path: str, json: object = None, **extra: object) -> object:
            kwargs: dict[str, object] = {"HTTP_AUTHORIZATION": f"Bearer {token}", **extra}
            if json is not None:
                kwargs["data"] = jsonlib.dumps(json)
                kwargs["content_type"] = "application/json"
            return getattr(client, method.lower())(path, **kwargs)

        return call

    return _for


def audit_actions_since(start_id: int) -> list[str]:
    from vetline.audit.models import AuditEvent

    return list(
        AuditEvent.objects.filter(id__gt=start_id).order_by("id").values_list("action", flat=True)
    )


def last_audit_id() -> int:
    from vetline.audit.models import AuditEvent

    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.fixture(autouse=True, scope="session")
def _let_test_flushes_clear_the_audit_table() -> object:
    """Transactional tests (live server, browser) empty every table between tests with
    Django's flush. The append-only triggers rightly refuse that, so for flushes only, and only
    in the test suite, the triggers are dropped around the flush and recreated after it."""
    import importlib

    from django.db.backends.base.operations import BaseDatabaseOperations

    mig = importlib.import_module("vetline.audit.migrations.0003_append_only_triggers")
    arc = importlib.import_module("vetline.archive.migrations.0002_append_only_triggers")
    ret = importlib.import_module(
        "vetline.archive.migrations.0006_retention_defaults_and_disposal_guard"
    )
    drop = {
        "sqlite": ret.SQLITE_DROP + mig.SQLITE_DOWN + arc.SQLITE_DOWN,
        "postgresql": ret.POSTGRES_DROP + mig.POSTGRES_DOWN + arc.POSTGRES_DOWN,
    }
    create = {
        "sqlite": mig.SQLITE_UP + arc.SQLITE_UP + ret.SQLITE_UP,
        "postgresql": mig.POSTGRES_UP + arc.POSTGRES_UP + ret.POSTGRES_UP,
    }
    patched = []
    from django.db import connections

    for conn in connections.all():
        ops_cls = type(conn.ops)
        if ops_cls in patched or not issubclass(ops_cls, BaseDatabaseOperations):
            continue
        original = ops_cls.sql_flush
        vendor = conn.vendor

        def sql_flush(self, style, tables, *, _orig=original, _v=vendor, **kw):  # type: ignore[no-untyped-def]
            statements = _orig(self, style, tables, **kw)
            if not {"audit_auditevent", "archive_disposalrecord", *arc.TABLES} & set(tables):
                return statements
            return [*drop.get(_v, []), *statements, *create.get(_v, [])]

        ops_cls.sql_flush = sql_flush  # type: ignore[method-assign]
        patched.append((ops_cls, original))
    yield None
    for ops_cls, original in patched:
        ops_cls.sql_flush = original  # type: ignore[method-assign]
