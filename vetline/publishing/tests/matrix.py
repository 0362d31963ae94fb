"""Permission-matrix entries for the publishing app's pages and API operations.

``vetline/core/tests/test_permission_matrix.py`` merges these into its tables; every page and
every API operation of this app needs an entry (see that module for how a Case is written).

In the matrix world the corporate account ``@acme`` has the Publisher (publish, reply) and the
Approver (approve) assigned; the Compliance officer owns it. The objects below are made through
the actions, as the people who would make them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from vetline.core.tests.matrix_support import ALL, Case, acc
from vetline.identity.roles import Role

PUBLISHER = frozenset({Role.PUBLISHER})
APPROVER = frozenset({Role.APPROVER})
COMPLIANCE = frozenset({Role.COMPLIANCE_OFFICER})
# Who sees a draft of @acme: its author, the people assigned to the account, and the roles
# that oversee publishing (screening override, freeze, chains).
DRAFT_VIEWERS = frozenset(
    {Role.PUBLISHER, Role.APPROVER, Role.COMPLIANCE_OFFICER, Role.ADMINISTRATOR}
)
FREEZERS = frozenset({Role.COMPLIANCE_OFFICER, Role.ADMINISTRATOR})
CHAIN_MANAGERS = frozenset({Role.COMPLIANCE_OFFICER, Role.ADMINISTRATOR})
DELEGATORS = frozenset({Role.APPROVER, Role.COMPLIANCE_OFFICER, Role.ADMINISTRATOR})

BLOCK_POLICY = (
    "name: matrix_block\nrules:\n  - id: b\n    kind: lexicon\n    severity: block\n"
    "    explanation: never\n    terms: [forbidden words]\n"
)


def _publisher(w: Any) -> Any:
    return w.people[Role.PUBLISHER]


def draft(w: Any, text: str = "Matrix draft") -> int:
    from vetline.publishing.actions import DraftInput, create_draft

    d = create_draft(actor=_publisher(w), data=DraftInput(text=text, account_ids=[acc(w)]))
    w.draft_id = d.pk
    return d.pk


def request(w: Any) -> int:
    from vetline.publishing.actions import submit_draft
    from vetline.publishing.models import ApprovalRequest

    d = draft(w)
    submit_draft(actor=_publisher(w), draft_id=d)
    req = ApprovalRequest.objects.get(subject_group=f"draft:{d}", state="pending")
    w.sha = req.subject_sha256
    return req.pk


def publication(w: Any, *, failed: bool = False) -> int:
    from django.db import transaction

    from vetline.publishing import actions
    from vetline.publishing.approvals import decide
    from vetline.publishing.models import Publication

    req = request(w)
    decide(actor=w.people[Role.APPROVER], request_id=req, decision="approve", subject_sha256=w.sha)
    pub = Publication.objects.get(draft_id=w.draft_id)
    if failed:
        with transaction.atomic():
            locked = Publication.objects.select_for_update().get(pk=pub.pk)
            actions._fail_locked(locked, "the matrix account is not connected")
    w.publication_id = pub.pk
    return pub.pk


def unsettled(w: Any) -> int:
    """A publication whose sending was interrupted long enough ago to be settled by hand."""
    from django.utils import timezone

    from vetline.publishing import actions
    from vetline.publishing.models import Publication

    pub_id = publication(w)
    assert actions._claim(pub_id, timezone.now())[0] == "claimed"
    Publication.objects.filter(pk=pub_id).update(
        intent_at=timezone.now() - actions.SEND_STALE - dt.timedelta(minutes=1)
    )
    return pub_id


SETTLE = {"outcome": "not_published", "reason": "Checked the account on the network: absent."}


def blocked_revision(w: Any) -> int:
    from vetline.policy.actions import create_policy, set_default_policy

    officer = w.people[Role.COMPLIANCE_OFFICER]
    set_default_policy(actor=officer, policy=create_policy(actor=officer, spec_yaml=BLOCK_POLICY))
    from vetline.publishing.models import Draft

    d = Draft.objects.get(pk=draft(w, "These are forbidden words"))
    rev = d.latest_revision
    assert rev is not None and rev.blocked
    return rev.pk


def freeze(w: Any, *, with_held: bool = False) -> int:
    from vetline.publishing.actions import start_freeze

    if with_held:
        publication(w)
    return start_freeze(actor=w.people[Role.COMPLIANCE_OFFICER], reason="Matrix freeze").pk


def delegation(w: Any) -> int:
    from django.utils import timezone

    from vetline.publishing.approvals import create_delegation

    approver = w.people[Role.APPROVER]
    return create_delegation(
        actor=approver,
        delegator=approver,
        delegate=w.people[Role.EXECUTIVE],
        starts_at=timezone.now(),
        ends_at=timezone.now() + dt.timedelta(days=2),
        reason="Leave",
    ).pk


def rogue(w: Any) -> int:
    from vetline.archive.actions import ingest_batch
    from vetline.publishing.actions import follow_archive
    from vetline.publishing.models import RoguePost

    ingest_batch(
        items=[{"remote_id": "rogue-1", "kind": "post", "direction": "outbound", "text": "oops"}],
        account=w.corporate,
        source="matrix",
        actor=None,
    )
    follow_archive()
    return RoguePost.objects.get().pk


def notification(w: Any) -> int:
    from django.db import transaction

    from vetline.publishing.models import Notification
    from vetline.publishing.notifications import notify

    with transaction.atomic():
        notify(people=[_publisher(w)], title="Matrix note")
    return Notification.objects.get(person=_publisher(w), title="Matrix note").pk


def _future(days: int) -> str:
    from django.utils import timezone

    return (timezone.now() + dt.timedelta(days=days)).strftime("%Y-%m-%d %H:%M")


def _future_iso(days: int) -> str:
    from django.utils import timezone

    return (timezone.now() + dt.timedelta(days=days)).isoformat()


P = "/publishing"
A = "/api/publishing"

PAGES: dict[str, list[Case]] = {
    "publishing:queue": [Case("GET", lambda w: f"{P}/", DRAFT_VIEWERS)],
    "publishing:calendar": [Case("GET", lambda w: f"{P}/calendar/", DRAFT_VIEWERS)],
    "publishing:compose": [
        Case("GET", lambda w: f"{P}/compose/", PUBLISHER),
        Case(
            "POST",
            lambda w: f"{P}/compose/",
            PUBLISHER,
            data=lambda w: {"text": "Hello from the matrix", "accounts": [acc(w)]},
        ),
    ],
    "publishing:screen": [
        Case("POST", lambda w: f"{P}/screen/", PUBLISHER, data=lambda w: {"text": "hello"})
    ],
    "publishing:draft": [Case("GET", lambda w: f"{P}/drafts/{draft(w)}/", DRAFT_VIEWERS)],
    "publishing:edit": [Case("GET", lambda w: f"{P}/drafts/{draft(w)}/edit/", PUBLISHER)],
    "publishing:submit": [Case("POST", lambda w: f"{P}/drafts/{draft(w)}/submit/", PUBLISHER)],
    "publishing:withdraw": [Case("POST", lambda w: f"{P}/drafts/{draft(w)}/withdraw/", PUBLISHER)],
    "publishing:override": [
        Case(
            "POST",
            lambda w: f"{P}/revisions/{blocked_revision(w)}/override/",
            COMPLIANCE,
            data=lambda w: {"reason": "Quoted from the regulator's release."},
        )
    ],
    "publishing:retry": [
        Case(
            "POST",
            lambda w: f"{P}/publications/{publication(w, failed=True)}/retry/",
            PUBLISHER,
        )
    ],
    "publishing:unsettled": [Case("GET", lambda w: f"{P}/unsettled/", DRAFT_VIEWERS)],
    "publishing:settle": [
        Case(
            "POST",
            lambda w: f"{P}/publications/{unsettled(w)}/settle/",
            COMPLIANCE,
            data=lambda w: SETTLE,
            note="publishing.override: a compliance officer, not the administrator",
        )
    ],
    "publishing:inbox": [Case("GET", lambda w: f"{P}/inbox/", ALL)],
    "publishing:review": [Case("GET", lambda w: f"{P}/reviews/{request(w)}/", DRAFT_VIEWERS)],
    "publishing:decide": [
        Case(
            "POST",
            lambda w: f"{P}/reviews/{request(w)}/decide/",
            APPROVER,
            data=lambda w: {"decision": "approve", "subject_sha256": w.sha},
            note="the author, compliance and administrators see it but may not decide",
        )
    ],
    "publishing:freezes": [
        Case("GET", lambda w: f"{P}/freezes/", FREEZERS),
        Case("POST", lambda w: f"{P}/freezes/", FREEZERS, data=lambda w: {"reason": "Tragedy"}),
    ],
    "publishing:freeze": [Case("GET", lambda w: f"{P}/freezes/{freeze(w)}/", FREEZERS)],
    "publishing:freeze_resolve": [
        Case(
            "POST",
            lambda w: f"{P}/freezes/{freeze(w, with_held=True)}/held/{w.publication_id}/",
            FREEZERS,
            data=lambda w: {"decision": "reconfirmed"},
        )
    ],
    "publishing:freeze_lift": [Case("POST", lambda w: f"{P}/freezes/{freeze(w)}/lift/", FREEZERS)],
    "publishing:chains": [
        Case("GET", lambda w: f"{P}/chains/", CHAIN_MANAGERS),
        Case(
            "POST",
            lambda w: f"{P}/chains/",
            CHAIN_MANAGERS,
            data=lambda w: {
                "name": "Matrix chain",
                "subject_kind": "post",
                "requires_approval": "on",
                "approval_valid_hours": 72,
                "steps": "Principal | 1 | approver",
            },
        ),
        Case(
            "POST",
            lambda w: f"{P}/chains/",
            CHAIN_MANAGERS,
            data=lambda w: {"form": "group", "group-name": "Brand", "group-members": [acc(w)]},
            note="creating an account group",
        ),
    ],
    "publishing:delegations": [
        Case("GET", lambda w: f"{P}/delegations/", DELEGATORS),
        Case(
            "POST",
            lambda w: f"{P}/delegations/",
            DELEGATORS,
            data=lambda w: {
                "delegate": w.people[Role.EXECUTIVE].email,
                "starts_at": _future(1),
                "ends_at": _future(3),
                "reason": "Leave",
            },
        ),
    ],
    "publishing:delegation_revoke": [
        Case(
            "POST",
            lambda w: f"{P}/delegations/{delegation(w)}/revoke/",
            frozenset({Role.APPROVER, Role.COMPLIANCE_OFFICER, Role.ADMINISTRATOR}),
            note="the delegator, and the chain managers",
        )
    ],
    "publishing:rogue": [Case("GET", lambda w: f"{P}/rogue/", ALL)],
    "publishing:rogue_acknowledge": [
        Case(
            "POST",
            lambda w: f"{P}/rogue/{rogue(w)}/acknowledge/",
            COMPLIANCE,
            note="the account's owner (here the compliance officer) and compliance",
        )
    ],
    "publishing:notifications": [Case("GET", lambda w: f"{P}/notifications/", ALL)],
    "publishing:notification_read": [
        Case(
            "POST",
            lambda w: f"{P}/notifications/{notification(w)}/read/",
            PUBLISHER,
            note="one's own notifications only",
        )
    ],
}

API: dict[str, list[Case]] = {
    f"GET {A}/drafts": [Case("GET", lambda w: f"{A}/drafts", ALL, note="filtered")],
    f"POST {A}/drafts": [
        Case(
            "POST",
            lambda w: f"{A}/drafts",
            PUBLISHER,
            data=lambda w: {"text": "From the API", "account_ids": [acc(w)]},
        )
    ],
    f"GET {A}/drafts/{{draft_id}}": [
        Case("GET", lambda w: f"{A}/drafts/{draft(w)}", DRAFT_VIEWERS)
    ],
    f"PUT {A}/drafts/{{draft_id}}": [
        Case(
            "PUT",
            lambda w: f"{A}/drafts/{draft(w)}",
            PUBLISHER,
            data=lambda w: {"text": "Edited", "account_ids": [acc(w)]},
        )
    ],
    f"GET {A}/drafts/{{draft_id}}/history": [
        Case("GET", lambda w: f"{A}/drafts/{draft(w)}/history", DRAFT_VIEWERS)
    ],
    f"GET {A}/drafts/{{draft_id}}/diff": [
        Case("GET", lambda w: f"{A}/drafts/{draft(w)}/diff", DRAFT_VIEWERS)
    ],
    f"POST {A}/drafts/{{draft_id}}/submit": [
        Case("POST", lambda w: f"{A}/drafts/{draft(w)}/submit", PUBLISHER, data=lambda w: {})
    ],
    f"POST {A}/drafts/{{draft_id}}/withdraw": [
        Case("POST", lambda w: f"{A}/drafts/{draft(w)}/withdraw", PUBLISHER, data=lambda w: {})
    ],
    f"POST {A}/drafts/{{draft_id}}/reschedule": [
        Case(
            "POST",
            lambda w: f"{A}/drafts/{draft(w)}/reschedule",
            PUBLISHER,
            data=lambda w: {"scheduled_for": _future_iso(1)},
        )
    ],
    f"POST {A}/revisions/{{revision_id}}/override": [
        Case(
            "POST",
            lambda w: f"{A}/revisions/{blocked_revision(w)}/override",
            COMPLIANCE,
            data=lambda w: {"reason": "Quoted from the regulator's release."},
        )
    ],
    f"POST {A}/screen": [
        Case("POST", lambda w: f"{A}/screen", PUBLISHER, data=lambda w: {"text": "hello"})
    ],
    f"GET {A}/approvals": [Case("GET", lambda w: f"{A}/approvals", ALL, note="filtered")],
    f"GET {A}/approvals/{{request_id}}": [
        Case("GET", lambda w: f"{A}/approvals/{request(w)}", DRAFT_VIEWERS)
    ],
    f"POST {A}/approvals/{{request_id}}/decide": [
        Case(
            "POST",
            lambda w: f"{A}/approvals/{request(w)}/decide",
            APPROVER,
            data=lambda w: {"decision": "approve", "subject_sha256": w.sha},
        )
    ],
    f"GET {A}/chains": [Case("GET", lambda w: f"{A}/chains", CHAIN_MANAGERS)],
    f"POST {A}/chains": [
        Case(
            "POST",
            lambda w: f"{A}/chains",
            CHAIN_MANAGERS,
            data=lambda w: {
                "name": "API chain",
                "subject_kind": "post",
                "account_id": acc(w),
                "steps": [{"name": "Principal", "required_approvals": 1, "role": "approver"}],
            },
        )
    ],
    f"GET {A}/groups": [Case("GET", lambda w: f"{A}/groups", CHAIN_MANAGERS)],
    f"POST {A}/groups": [
        Case(
            "POST",
            lambda w: f"{A}/groups",
            CHAIN_MANAGERS,
            data=lambda w: {"name": "Brand accounts", "account_ids": [acc(w)]},
        )
    ],
    f"GET {A}/delegations": [Case("GET", lambda w: f"{A}/delegations", ALL, note="filtered")],
    f"POST {A}/delegations": [
        Case(
            "POST",
            lambda w: f"{A}/delegations",
            DELEGATORS,
            data=lambda w: {
                "delegate_id": w.people[Role.EXECUTIVE].pk,
                "starts_at": _future_iso(1),
                "ends_at": _future_iso(3),
                "reason": "Leave",
            },
        )
    ],
    f"POST {A}/delegations/{{delegation_id}}/revoke": [
        Case(
            "POST",
            lambda w: f"{A}/delegations/{delegation(w)}/revoke",
            frozenset({Role.APPROVER, Role.COMPLIANCE_OFFICER, Role.ADMINISTRATOR}),
        )
    ],
    f"GET {A}/freezes": [Case("GET", lambda w: f"{A}/freezes", FREEZERS)],
    f"POST {A}/freezes": [
        Case("POST", lambda w: f"{A}/freezes", FREEZERS, data=lambda w: {"reason": "Tragedy"})
    ],
    f"POST {A}/freezes/{{freeze_id}}/held/{{publication_id}}": [
        Case(
            "POST",
            lambda w: f"{A}/freezes/{freeze(w, with_held=True)}/held/{w.publication_id}",
            FREEZERS,
            data=lambda w: {"decision": "withdrawn"},
        )
    ],
    f"POST {A}/freezes/{{freeze_id}}/lift": [
        Case("POST", lambda w: f"{A}/freezes/{freeze(w)}/lift", FREEZERS, data=lambda w: {})
    ],
    f"GET {A}/publications/{{publication_id}}": [
        Case("GET", lambda w: f"{A}/publications/{publication(w)}", DRAFT_VIEWERS)
    ],
    f"POST {A}/publications/{{publication_id}}/retry": [
        Case(
            "POST",
            lambda w: f"{A}/publications/{publication(w, failed=True)}/retry",
            PUBLISHER,
        )
    ],
    f"GET {A}/unsettled": [Case("GET", lambda w: f"{A}/unsettled", ALL, note="filtered")],
    f"POST {A}/publications/{{publication_id}}/settle": [
        Case(
            "POST",
            lambda w: f"{A}/publications/{unsettled(w)}/settle",
            COMPLIANCE,
            data=lambda w: SETTLE,
        )
    ],
    f"GET {A}/rogue-posts": [Case("GET", lambda w: f"{A}/rogue-posts", ALL, note="filtered")],
    f"POST {A}/rogue-posts/{{rogue_id}}/acknowledge": [
        Case(
            "POST",
            lambda w: f"{A}/rogue-posts/{rogue(w)}/acknowledge",
            COMPLIANCE,
            data=lambda w: {"note": "seen"},
        )
    ],
    f"GET {A}/notifications": [Case("GET", lambda w: f"{A}/notifications", ALL)],
    f"POST {A}/notifications/{{notification_id}}/read": [
        Case("POST", lambda w: f"{A}/notifications/{notification(w)}/read", PUBLISHER)
    ],
}
