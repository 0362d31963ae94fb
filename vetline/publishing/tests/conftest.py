"""Fixtures of the publishing tests: a connected sandbox corporate account with a publisher and
two approvers, a two-step chain, and a small policy with a block and an escalate rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from vetline.identity.roles import Capability, Role

SPEC = """name: publishing_test
version: 1
rules:
  - id: promise.returns
    kind: lexicon
    severity: block
    explanation: Promissory language is never published.
    terms: [guaranteed returns]
  - id: tragedy.hurricane
    kind: lexicon
    severity: escalate
    explanation: Posts that mention a disaster go to compliance.
    terms: [hurricane]
"""
CALLBACK = "http://testserver/connectors/oauth/callback/"


@dataclass
class PubWorld:
    world: Any
    account: Any  # sandbox corporate account, connected
    publisher: Any
    approver: Any
    approver2: Any
    officer: Any
    admin: Any
    chain: Any


@pytest.fixture
def policy(world: Any) -> Any:
    from vetline.policy.actions import create_policy, set_default_policy

    officer = world.people[Role.COMPLIANCE_OFFICER]
    p = create_policy(actor=officer, spec_yaml=SPEC)
    return set_default_policy(actor=officer, policy=p)


@pytest.fixture
def pw(world: Any, policy: Any, make_person: Callable[..., Any]) -> PubWorld:
    from urllib.parse import parse_qs, urlsplit

    from vetline.accounts.models import AccountKind, Assignment, Network, SocialAccount
    from vetline.connectors.actions import complete_connection, start_connection
    from vetline.publishing.approvals import StepInput, save_chain

    admin = world.people[Role.ADMINISTRATOR]
    officer = world.people[Role.COMPLIANCE_OFFICER]
    account = SocialAccount.objects.create(
        network=Network.SANDBOX,
        handle="acme-training",
        kind=AccountKind.CORPORATE,
        owner=officer,
        display_name="Acme (training)",
    )
    start = start_connection(actor=admin, account=account, redirect_uri=CALLBACK)
    q = parse_qs(urlsplit(start.url).query)
    complete_connection(actor=admin, state=q["state"][0], code=q["code"][0], redirect_uri=CALLBACK)
    publisher = world.people[Role.PUBLISHER]
    approver = world.people[Role.APPROVER]
    approver2 = make_person(Role.APPROVER, "approver2@example.com", full_name="Second Approver")
    for person, cap in (
        (publisher, Capability.PUBLISH),
        (publisher, Capability.REPLY),
        (approver, Capability.APPROVE),
        (approver2, Capability.APPROVE),
    ):
        Assignment.objects.create(account=account, person=person, capability=cap.value)
    chain = save_chain(
        actor=officer,
        name="Sandbox posts",
        subject_kind="post",
        account=account,
        steps=[
            StepInput("Principal", 1, role=Role.APPROVER.value),
            StepInput("Senior principal", 1, approver_ids=(approver2.pk,)),
        ],
    )
    return PubWorld(world, account, publisher, approver, approver2, officer, admin, chain)


def draft_input(account: Any, text: str, **kw: Any) -> Any:
    from vetline.publishing.actions import DraftInput

    return DraftInput(text=text, account_ids=[account.pk], **kw)


class Crash(BaseException):
    """Stands for the process dying at that point (not an Exception: nothing catches it)."""


def stuck_publication(pw: PubWorld, monkeypatch: Any, text: str, *, sent: bool) -> Any:
    """A publication whose sending was interrupted more than the stale threshold ago (the worker
    died after the network accepted the post when ``sent``, before the network call otherwise),
    on an account capture cannot check right now (capture deferred after a rate limit), and
    already reconciled once: its fate is unknown and a ``publish_unknown`` alert is open."""
    import datetime as dt

    from django.db.models import F
    from django.utils import timezone

    from vetline.connectors.models import CaptureState
    from vetline.connectors.sandbox.connector import SandboxConnector
    from vetline.publishing import actions, approvals
    from vetline.publishing.models import ApprovalRequest, Publication

    with monkeypatch.context() as m:
        # The worker has not picked it up yet (in transactional tests the approval's on-commit
        # send would otherwise run at once).
        m.setattr(actions, "_enqueue", lambda pub: None)
        draft = actions.create_draft(actor=pw.publisher, data=draft_input(pw.account, text))
        actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
        req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}", state="pending")
        for who in (pw.approver, pw.approver2):
            approvals.decide(
                actor=who, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
            )
    pub = Publication.objects.get(draft=draft)
    assert pub.state == "queued"

    def crash(*args: Any, **kw: Any) -> Any:
        raise Crash

    with monkeypatch.context() as m:
        if sent:
            m.setattr(actions, "record_published", crash)
        else:
            m.setattr(SandboxConnector, "publish", crash)
        with pytest.raises(Crash):
            actions.publish_publication(publication_id=pub.pk)
    # Time passes: the intent is now older than the stale threshold.
    Publication.objects.filter(pk=pub.pk).update(
        intent_at=F("intent_at") - actions.SEND_STALE - dt.timedelta(minutes=1)
    )
    CaptureState.objects.update_or_create(
        account=pw.account,
        defaults={"retry_not_before": timezone.now() + dt.timedelta(hours=1)},
    )
    assert actions.reconcile_publication(publication_id=pub.pk) == "unknown"
    pub.refresh_from_db()
    assert pub.state == "sending"
    return pub
