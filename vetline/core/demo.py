"""The demo organisation: Harbor Point Securities, a fictional mid-size broker-dealer.

Loaded through the same actions as real use, so the demo's audit trail is real too. Loading is
idempotent: running it again changes nothing that is already there.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from vetline.accounts import actions as account_actions
from vetline.accounts.models import AccountKind, Network, OrgSettings, SocialAccount
from vetline.audit.actions import record
from vetline.identity import actions as identity_actions
from vetline.identity.models import Person, RoleGrant
from vetline.identity.roles import Capability, Role

DEMO_PASSWORD = "harbor-point-demo"
ORG_NAME = "Harbor Point Securities"


@dataclass(frozen=True)
class DemoPerson:
    email: str
    full_name: str
    title: str
    business_unit: str
    roles: tuple[Role, ...]
    totp_secret: str  # base32; pre-enrolled so the demo can sign in at once


PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson(
        "admin@harborpoint.example",
        "Alex Morgan",
        "IT Director",
        "Technology",
        (Role.ADMINISTRATOR,),
        "JBSWY3DPEHPK3PXPADMINAAA",
    ),
    DemoPerson(
        "compliance@harborpoint.example",
        "Priya Natarajan",
        "Chief Compliance Officer",
        "Compliance",
        (Role.COMPLIANCE_OFFICER,),
        "JBSWY3DPEHPK3PXPCOMPLIAN",
    ),
    DemoPerson(
        "supervisor@harborpoint.example",
        "Daniel Okafor",
        "Branch Supervisor",
        "Wealth Management",
        (Role.SUPERVISOR,),
        "JBSWY3DPEHPK3PXPSUPERVIS",
    ),
    DemoPerson(
        "approver@harborpoint.example",
        "Grace Liu",
        "Registered Principal",
        "Marketing",
        (Role.APPROVER,),
        "JBSWY3DPEHPK3PXPAPPROVER",
    ),
    DemoPerson(
        "approver2@harborpoint.example",
        "Samuel Reyes",
        "Registered Principal",
        "Compliance",
        (Role.APPROVER,),
        "JBSWY3DPEHPK3PXPAPPROVE2",
    ),
    DemoPerson(
        "publisher@harborpoint.example",
        "Maya Chen",
        "Social Media Manager",
        "Marketing",
        (Role.PUBLISHER,),
        "JBSWY3DPEHPK3PXPPUBLISHR",
    ),
    DemoPerson(
        "publisher2@harborpoint.example",
        "Tom Becker",
        "Community Specialist",
        "Marketing",
        (Role.PUBLISHER,),
        "JBSWY3DPEHPK3PXPPUBLISH2",
    ),
    DemoPerson(
        "monitor@harborpoint.example",
        "Fatima Haddad",
        "Internal Comms Lead",
        "Human Resources",
        (Role.COMMUNITY_MONITOR,),
        "JBSWY3DPEHPK3PXPMONITORA",
    ),
    DemoPerson(
        "advisor@harborpoint.example",
        "Jordan Blake",
        "Financial Advisor",
        "Wealth Management",
        (Role.EMPLOYEE,),
        "JBSWY3DPEHPK3PXPADVISORA",
    ),
    DemoPerson(
        "advisor2@harborpoint.example",
        "Elena Petrova",
        "Financial Advisor",
        "Wealth Management",
        (Role.EMPLOYEE,),
        "JBSWY3DPEHPK3PXPADVISORB",
    ),
    DemoPerson(
        "auditor@harborpoint.example",
        "Robert Kim",
        "Internal Auditor",
        "Audit",
        (Role.AUDITOR,),
        "JBSWY3DPEHPK3PXPAUDITORA",
    ),
    DemoPerson(
        "cio@harborpoint.example",
        "Helen Walsh",
        "Chief Information Officer",
        "Executive Office",
        (Role.EXECUTIVE,),
        "JBSWY3DPEHPK3PXPEXECUTIV",
    ),
)


@dataclass(frozen=True)
class DemoAccount:
    network: Network
    handle: str
    display_name: str
    kind: AccountKind
    owner_email: str
    business_unit: str
    assignments: tuple[tuple[str, Capability], ...] = ()


_MARKETING = (
    ("publisher@harborpoint.example", Capability.PUBLISH),
    ("publisher2@harborpoint.example", Capability.PUBLISH),
    ("publisher@harborpoint.example", Capability.REPLY),
    ("approver@harborpoint.example", Capability.APPROVE),
    ("approver2@harborpoint.example", Capability.APPROVE),
)

ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount(
        Network.X,
        "@HarborPointSec",
        "Harbor Point Securities",
        AccountKind.CORPORATE,
        "compliance@harborpoint.example",
        "Marketing",
        _MARKETING,
    ),
    DemoAccount(
        Network.LINKEDIN,
        "harbor-point-securities",
        "Harbor Point Securities",
        AccountKind.CORPORATE,
        "compliance@harborpoint.example",
        "Marketing",
        _MARKETING,
    ),
    DemoAccount(
        Network.FACEBOOK,
        "HarborPointSecurities",
        "Harbor Point Securities",
        AccountKind.CORPORATE,
        "compliance@harborpoint.example",
        "Marketing",
        _MARKETING[:3],
    ),
    DemoAccount(
        Network.INSTAGRAM,
        "@harborpoint",
        "Harbor Point",
        AccountKind.CORPORATE,
        "compliance@harborpoint.example",
        "Marketing",
        _MARKETING[:2],
    ),
    DemoAccount(
        Network.MASTODON,
        "@harborpoint@finance.social",
        "Harbor Point Securities",
        AccountKind.CORPORATE,
        "compliance@harborpoint.example",
        "Marketing",
        _MARKETING[:1],
    ),
    DemoAccount(
        Network.BLUESKY,
        "harborpoint.bsky.social",
        "Harbor Point Securities",
        AccountKind.CORPORATE,
        "compliance@harborpoint.example",
        "Marketing",
        _MARKETING[:1],
    ),
    DemoAccount(
        Network.X,
        "@HarborPointHelp",
        "Harbor Point Client Care",
        AccountKind.CORPORATE,
        "compliance@harborpoint.example",
        "Client Services",
        (
            ("publisher2@harborpoint.example", Capability.REPLY),
            ("publisher2@harborpoint.example", Capability.PUBLISH),
            ("approver@harborpoint.example", Capability.APPROVE),
        ),
    ),
    DemoAccount(
        Network.INTERNAL,
        "#harbor-point-all",
        "Harbor Point (internal)",
        AccountKind.CORPORATE,
        "monitor@harborpoint.example",
        "Human Resources",
    ),
    DemoAccount(
        Network.LINKEDIN,
        "jordan-blake-cfp",
        "Jordan Blake, CFP®",
        AccountKind.EMPLOYEE,
        "advisor@harborpoint.example",
        "Wealth Management",
    ),
    DemoAccount(
        Network.X,
        "@JordanBlakeCFP",
        "Jordan Blake",
        AccountKind.EMPLOYEE,
        "advisor@harborpoint.example",
        "Wealth Management",
    ),
    # The training sandbox (vetline.connectors.sandbox): connected and captured like any other
    # network, so capture works in the demo with no internet.
    DemoAccount(
        Network.SANDBOX,
        "harborpoint-training",
        "Harbor Point (training sandbox)",
        AccountKind.CORPORATE,
        "compliance@harborpoint.example",
        "Marketing",
        _MARKETING,
    ),
    DemoAccount(
        Network.SANDBOX,
        "jordan-blake-training",
        "Jordan Blake (training sandbox)",
        AccountKind.EMPLOYEE,
        "advisor@harborpoint.example",
        "Wealth Management",
    ),
    DemoAccount(
        Network.LINKEDIN,
        "elena-petrova-advisor",
        "Elena Petrova",
        AccountKind.EMPLOYEE,
        "advisor2@harborpoint.example",
        "Wealth Management",
    ),
)


def _ensure_totp(person: Person, secret: str) -> None:
    from allauth.mfa.models import Authenticator
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP

    if not Authenticator.objects.filter(user=person, type=Authenticator.Type.TOTP).exists():
        with transaction.atomic():
            TOTP.activate(person, secret)
    if not Authenticator.objects.filter(
        user=person, type=Authenticator.Type.RECOVERY_CODES
    ).exists():
        with transaction.atomic():
            RecoveryCodes.activate(person)


def load_demo() -> dict[str, int]:
    """Create (or complete) the demo organisation. Returns what was newly created."""
    created = {"people": 0, "accounts": 0, "assignments": 0, "policies": 0}
    admin_spec = PEOPLE[0]
    with transaction.atomic():
        org = OrgSettings.load()
        if org.name != ORG_NAME:
            org.name = ORG_NAME
            org.save(update_fields=["name"])
            record(
                action="accounts.org.update",
                actor=None,
                actor_name="demo loader",
                obj=org,
                after={"name": ORG_NAME},
            )
        admin = Person.objects.filter(email=admin_spec.email).first()
        if admin is None:
            admin = Person.objects.create_user(
                email=admin_spec.email,
                password=DEMO_PASSWORD,
                full_name=admin_spec.full_name,
                title=admin_spec.title,
                business_unit=admin_spec.business_unit,
                is_staff=True,
            )
            RoleGrant.objects.create(person=admin, role=Role.ADMINISTRATOR.value)
            record(
                action="identity.person.bootstrap",
                actor=None,
                actor_name="demo loader",
                obj=admin,
                after={"email": admin.email, "roles": [Role.ADMINISTRATOR.value]},
            )
            created["people"] += 1
    people = {admin.email: admin}
    for spec in PEOPLE[1:]:
        person = Person.objects.filter(email=spec.email).first()
        if person is None:
            person = identity_actions.create_person(
                actor=admin,
                email=spec.email,
                full_name=spec.full_name,
                roles=list(spec.roles),
                title=spec.title,
                business_unit=spec.business_unit,
                password=DEMO_PASSWORD,
            )
            created["people"] += 1
        people[spec.email] = person
    for spec in PEOPLE:
        _ensure_totp(people[spec.email], spec.totp_secret)
    for acc in ACCOUNTS:
        account = SocialAccount.objects.filter(network=acc.network, handle=acc.handle).first()
        if account is None:
            account = account_actions.register_account(
                actor=admin,
                network=acc.network,
                handle=acc.handle,
                kind=acc.kind,
                owner=people[acc.owner_email],
                display_name=acc.display_name,
                business_unit=acc.business_unit,
            )
            created["accounts"] += 1
        for email, capability in acc.assignments:
            if not account.assignments.filter(
                person=people[email], capability=capability.value
            ).exists():
                account_actions.assign_person(
                    actor=admin, account=account, person=people[email], capability=capability
                )
                created["assignments"] += 1
    from vetline.policy.actions import install_pack
    from vetline.policy.models import Policy

    before = Policy.objects.count()
    install_pack(actor=admin, pack="general_brand_safety")
    install_pack(actor=admin, pack="financial_services", default=True)
    created["policies"] = Policy.objects.count() - before
    created["sandbox_connections"] = _connect_sandbox(admin, people)
    from vetline.profiles.demo import load as load_profiles_demo

    load_profiles_demo(people)
    from vetline.supervision.demo import load_supervision_demo

    load_supervision_demo()
    from vetline.publishing.demo import load_publishing_demo

    load_publishing_demo(people)
    return created


SANDBOX_POSTS: tuple[str, ...] = (
    "Markets open in 30 minutes: our morning note is on the blog.",
    "Join our free webinar on retirement planning this Thursday.",
    "Reminder: investing involves risk, including possible loss of principal.",
)


def _connect_sandbox(admin: Person, people: dict[str, Person]) -> int:
    """Connect the demo's sandbox accounts through the real flows (an administrator for the
    corporate one, a consent link redeemed by the advisor for the personal one), give their
    timelines a few posts and customers, and capture them once. Idempotent."""
    import random
    from urllib.parse import parse_qs, urlsplit

    from django.conf import settings
    from django.urls import reverse

    from vetline.connectors import actions as connector_actions
    from vetline.connectors.models import Connection
    from vetline.connectors.sandbox import network as sandbox
    from vetline.connectors.sandbox.models import SandboxPost
    from vetline.connectors.sandbox.simulator import simulate
    from vetline.connectors.states import ConnectionState

    callback = settings.VETLINE_BASE_URL.rstrip("/") + reverse("connectors:oauth_callback")
    connected = 0
    for account in SocialAccount.objects.filter(network=Network.SANDBOX):
        timeline = sandbox.ensure_account(account.handle, display_name=account.display_name)
        if not SandboxPost.objects.filter(timeline=timeline).exists():
            for text in SANDBOX_POSTS:
                sandbox.create_post(timeline=timeline, author=timeline, text=text)
        conn = Connection.objects.filter(account=account).first()
        if conn is not None and conn.status == ConnectionState.CONNECTED:
            continue
        if account.kind == AccountKind.CORPORATE:
            actor = admin
            start = connector_actions.start_connection(
                actor=admin, account=account, redirect_uri=callback
            )
        else:
            actor = account.owner
            issued = connector_actions.create_consent_link(actor=admin, account=account)
            start = connector_actions.redeem_consent_link(
                actor=actor, token=issued.token, redirect_uri=callback
            )
        query = parse_qs(urlsplit(start.url).query)
        connector_actions.complete_connection(
            actor=actor, state=query["state"][0], code=query["code"][0], redirect_uri=callback
        )
        connected += 1
    if not connected:  # already loaded: a second run adds nothing
        return 0
    simulate(rng=random.Random(7), actions=6)
    for account_id in connector_actions.capture_due_account_ids():
        connector_actions.capture_account(account_id=account_id)
    return connected
