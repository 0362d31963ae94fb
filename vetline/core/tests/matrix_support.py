"""What the permission matrix is made of: a :class:`Case` says how to call one page or API
operation and which roles may; the role sets below are the usual audiences. Each app lists its
own cases in ``<app>/tests/matrix.py`` (``PAGES`` and ``API``), merged by
``test_permission_matrix.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vetline.identity.roles import Role

ALL = frozenset(Role)
ADMIN = frozenset({Role.ADMINISTRATOR})
PEOPLE_READERS = frozenset(
    {Role.ADMINISTRATOR, Role.COMPLIANCE_OFFICER, Role.AUDITOR, Role.EXECUTIVE}
)
AUDIT_READERS = frozenset({Role.ADMINISTRATOR, Role.COMPLIANCE_OFFICER, Role.AUDITOR})
AUDIT_EXPORTERS = frozenset({Role.COMPLIANCE_OFFICER, Role.AUDITOR})
POLICY_READERS = frozenset({Role.COMPLIANCE_OFFICER, Role.SUPERVISOR, Role.AUDITOR, Role.APPROVER})
POLICY_MANAGERS = frozenset({Role.COMPLIANCE_OFFICER})
REGISTRY_WIDE = frozenset(
    {Role.ADMINISTRATOR, Role.COMPLIANCE_OFFICER, Role.SUPERVISOR, Role.AUDITOR, Role.EXECUTIVE}
)
# The corporate account in the `world` fixture is assigned to the publisher and the approver.
SEES_ASSIGNED = REGISTRY_WIDE | {Role.PUBLISHER, Role.APPROVER}
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Case:
    """How to call one endpoint and who may. ``target`` picks the object: "assigned" is the
    account the publisher/approver are assigned to, "unassigned" one nobody is."""

    method: str
    path: Callable[[Any], str]
    allowed: frozenset[Role]
    data: Callable[[Any], dict[str, Any]] | None = None
    anonymous_ok: bool = False
    note: str = ""
    variants: tuple[str, ...] = field(default=("",))


def acc(w: Any) -> int:
    """The corporate account the publisher and the approver are assigned to."""
    return w.corporate.pk


def other(w: Any) -> int:
    """A corporate account nobody in the world is assigned to."""
    return w.other.pk


def emp(w: Any) -> int:
    """The Employee (a person id)."""
    return w.people[Role.EMPLOYEE].pk
