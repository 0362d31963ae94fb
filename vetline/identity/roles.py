"""Roles and what they allow: the one place where the role -> permission mapping is defined.

Plain Python, no ORM, so it can be read (and reviewed by compliance) on its own.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMINISTRATOR = "administrator"
    COMPLIANCE_OFFICER = "compliance_officer"
    SUPERVISOR = "supervisor"
    APPROVER = "approver"
    PUBLISHER = "publisher"
    COMMUNITY_MONITOR = "community_monitor"
    EMPLOYEE = "employee"
    AUDITOR = "auditor"
    EXECUTIVE = "executive"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS: dict[Role, str] = {
    Role.ADMINISTRATOR: "Administrator",
    Role.COMPLIANCE_OFFICER: "Compliance officer",
    Role.SUPERVISOR: "Supervisor",
    Role.APPROVER: "Approver",
    Role.PUBLISHER: "Publisher",
    Role.COMMUNITY_MONITOR: "Community monitor",
    Role.EMPLOYEE: "Employee",
    Role.AUDITOR: "Auditor",
    Role.EXECUTIVE: "Executive",
}


class Perm(StrEnum):
    # Account registry
    ACCOUNTS_VIEW_ALL = "accounts.view_all"  # see every account, not only assigned/owned ones
    ACCOUNTS_MANAGE = "accounts.manage"  # register accounts, assign people, set caps
    CREDENTIALS_MANAGE = "accounts.credentials"  # set, replace, revoke network credentials
    PUBLISH = "accounts.publish"  # may be assigned to publish on an account
    APPROVE = "accounts.approve"  # may be assigned to approve for an account
    REPLY = "accounts.reply"  # may be assigned to answer customers on an account
    OWN_ACCOUNTS = "accounts.own"  # may own personal-for-business accounts
    # People
    PEOPLE_VIEW = "people.view"
    PEOPLE_MANAGE = "people.manage"  # create people, grant and revoke roles, offboard
    ORG_MANAGE = "org.manage"  # organisation-wide settings such as the publisher cap
    # Audit, archive, legal
    AUDIT_VIEW = "audit.view"
    AUDIT_EXPORT = "audit.export"
    ARCHIVE_VIEW = "archive.view"
    ARCHIVE_EXPORT = "archive.export"
    LEGAL_HOLD = "legal.hold"
    POLICY_VIEW = "policy.view"  # read policies, their versions and diffs
    POLICY_MANAGE = "policy.manage"
    # Publishing: the line of authority (drafting itself is scoped by PUBLISH/APPROVE assignments)
    APPROVAL_CHAINS_MANAGE = "publishing.chains"  # configure approval chains and delegations
    SCREENING_OVERRIDE = "publishing.override"  # override a block hit with a written reason
    PUBLISHING_FREEZE = "publishing.freeze"  # freeze and lift the freeze on queued posts
    PROFILES_VET = "profiles.vet"  # approve or reject employees' proposed profiles
    # Supervision, community, reporting
    SUPERVISE = "supervision.review"
    SUPERVISION_MANAGE = "supervision.manage"  # queues, routing, sampling plans, retro runs
    INSPECT = "supervision.inspect"  # the per-employee / per-account inspection timeline
    MODERATE = "community.moderate"
    REPORTS_VIEW = "reports.view"


ROLE_PERMISSIONS: dict[Role, frozenset[Perm]] = {
    Role.ADMINISTRATOR: frozenset(
        {
            Perm.APPROVAL_CHAINS_MANAGE,
            Perm.PUBLISHING_FREEZE,
            Perm.ACCOUNTS_VIEW_ALL,
            Perm.ACCOUNTS_MANAGE,
            Perm.CREDENTIALS_MANAGE,
            Perm.PEOPLE_VIEW,
            Perm.PEOPLE_MANAGE,
            Perm.ORG_MANAGE,
            Perm.AUDIT_VIEW,
        }
    ),
    Role.COMPLIANCE_OFFICER: frozenset(
        {
            Perm.ACCOUNTS_VIEW_ALL,
            Perm.PEOPLE_VIEW,
            Perm.AUDIT_VIEW,
            Perm.AUDIT_EXPORT,
            Perm.ARCHIVE_VIEW,
            Perm.ARCHIVE_EXPORT,
            Perm.LEGAL_HOLD,
            Perm.POLICY_VIEW,
            Perm.POLICY_MANAGE,
            Perm.SUPERVISE,
            Perm.REPORTS_VIEW,
            Perm.APPROVAL_CHAINS_MANAGE,
            Perm.SCREENING_OVERRIDE,
            Perm.PUBLISHING_FREEZE,
            Perm.PROFILES_VET,
            Perm.SUPERVISION_MANAGE,
            Perm.INSPECT,
        }
    ),
    Role.SUPERVISOR: frozenset(
        {Perm.ACCOUNTS_VIEW_ALL, Perm.ARCHIVE_VIEW, Perm.SUPERVISE, Perm.POLICY_VIEW}
    ),
    Role.APPROVER: frozenset({Perm.APPROVE, Perm.POLICY_VIEW}),
    Role.PUBLISHER: frozenset({Perm.PUBLISH, Perm.REPLY}),
    Role.COMMUNITY_MONITOR: frozenset({Perm.MODERATE}),
    Role.EMPLOYEE: frozenset({Perm.OWN_ACCOUNTS}),
    Role.AUDITOR: frozenset(
        {
            Perm.ACCOUNTS_VIEW_ALL,
            Perm.PEOPLE_VIEW,
            Perm.AUDIT_VIEW,
            Perm.AUDIT_EXPORT,
            Perm.ARCHIVE_VIEW,
            Perm.ARCHIVE_EXPORT,
            Perm.POLICY_VIEW,
        }
    ),
    Role.EXECUTIVE: frozenset(
        {Perm.ACCOUNTS_VIEW_ALL, Perm.PEOPLE_VIEW, Perm.REPORTS_VIEW, Perm.INSPECT}
    ),
}

# Holding any of these makes TOTP enrolment mandatory before anything else can be done:
# publish, approve, administer, export, or hold legal matters.
MFA_REQUIRED_PERMISSIONS: frozenset[Perm] = frozenset(
    {
        Perm.PUBLISH,
        Perm.APPROVE,
        Perm.ACCOUNTS_MANAGE,
        Perm.CREDENTIALS_MANAGE,
        Perm.PEOPLE_MANAGE,
        Perm.ORG_MANAGE,
        Perm.AUDIT_EXPORT,
        Perm.ARCHIVE_EXPORT,
        Perm.LEGAL_HOLD,
    }
)


class Capability(StrEnum):
    """What a person is assigned to do on one account, and the permission it needs."""

    PUBLISH = "publish"
    APPROVE = "approve"
    REPLY = "reply"

    @property
    def required_permission(self) -> Perm:
        return {
            Capability.PUBLISH: Perm.PUBLISH,
            Capability.APPROVE: Perm.APPROVE,
            Capability.REPLY: Perm.REPLY,
        }[self]


def permissions_for(roles: frozenset[Role] | set[Role]) -> frozenset[Perm]:
    granted: set[Perm] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS[role]
    return frozenset(granted)


def mfa_required_for(roles: frozenset[Role] | set[Role]) -> bool:
    return bool(permissions_for(roles) & MFA_REQUIRED_PERMISSIONS)
