"""Publishing in the demo organisation (Harbor Point Securities), made through the same actions
as real use, on the training sandbox account. Idempotent: once a draft exists nothing is added.

* a two-principal chain for the sandbox account;
* a webinar post approved by two principals and published to the sandbox, linked in the archive
  to its approval record;
* a post approved and scheduled for tomorrow morning;
* a draft in review, waiting for the second principal;
* a draft blocked by screening (promissory language), for the publisher to fix;
* a draft rejected with a comment;
* a rogue post: someone posted on the brand's sandbox account directly, which raised the alarm.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.utils import timezone

from vetline.accounts.models import Network, SocialAccount
from vetline.identity.models import Person
from vetline.identity.roles import Role
from vetline.publishing import actions, approvals
from vetline.publishing.models import ApprovalRequest, Draft, Publication

logger = logging.getLogger(__name__)

HANDLE = "harborpoint-training"


def _person(email: str) -> Person | None:
    return Person.objects.filter(email=email).first()


def _request(draft: Draft) -> ApprovalRequest:
    return ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}", state="pending")


def _approve(req: ApprovalRequest, who: Person) -> None:
    approvals.decide(
        actor=who, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
    )


def load_publishing_demo(people: Any = None) -> dict[str, int]:
    account = SocialAccount.objects.filter(network=Network.SANDBOX, handle=HANDLE).first()
    publisher = _person("publisher@harborpoint.example")
    approver = _person("approver@harborpoint.example")
    approver2 = _person("approver2@harborpoint.example")
    officer = _person("compliance@harborpoint.example")
    if None in (account, publisher, approver, approver2, officer) or Draft.objects.exists():
        return {"drafts": 0}
    assert account and publisher and approver and approver2 and officer
    approvals.save_chain(
        actor=officer,
        name="Marketing posts: two principals",
        subject_kind="post",
        account=account,
        steps=[
            approvals.StepInput("Principal", 1, role=Role.APPROVER.value),
            approvals.StepInput("Second principal", 1, role=Role.APPROVER.value),
        ],
        approval_valid_hours=72,
    )

    def draft(text: str, **kw: Any) -> Draft:
        return actions.create_draft(
            actor=publisher, data=actions.DraftInput(text=text, account_ids=[account.pk], **kw)
        )

    published = draft(
        "Join our free webinar on tax-smart retirement saving this Thursday at 6 pm. "
        "Investing involves risk."
    )
    actions.submit_draft(actor=publisher, draft_id=published.pk)
    req = _request(published)
    _approve(req, approver)
    _approve(req, approver2)
    for pub in Publication.objects.filter(draft=published):
        actions.publish_publication(publication_id=pub.pk)

    tomorrow = (timezone.now() + dt.timedelta(days=1)).replace(
        hour=9, minute=30, second=0, microsecond=0
    )
    scheduled = draft(
        "Markets open in 30 minutes: our morning note is on the blog.",
        scheduled_for=tomorrow,
    )
    actions.submit_draft(actor=publisher, draft_id=scheduled.pk)
    req = _request(scheduled)
    _approve(req, approver)
    _approve(req, approver2)

    waiting = draft("Our branch on Harbor Street is open on Saturday mornings from March.")
    actions.submit_draft(actor=publisher, draft_id=waiting.pk)
    _approve(_request(waiting), approver)

    draft("Guaranteed returns of 9% a year with our new income fund. Risk-free!")

    rejected = draft("Our new mobile app shows your whole portfolio in one place. Try it today!")
    actions.submit_draft(actor=publisher, draft_id=rejected.pk)
    approvals.decide(
        actor=approver,
        request_id=_request(rejected).pk,
        decision="reject",
        comment="Name the app stores, and add the risk disclosure and the fees link.",
        subject_sha256=_request(rejected).subject_sha256,
    )

    _rogue_post(account)
    return {"drafts": Draft.objects.count()}


def _rogue_post(account: SocialAccount) -> None:
    """Someone at the agency posts on the brand account directly, thinking it is their own."""
    from vetline.connectors.actions import capture_account
    from vetline.connectors.sandbox import network as sandbox

    timeline = sandbox.ensure_account(account.handle)
    sandbox.create_post(
        timeline=timeline,
        author=timeline,
        text="Can't believe I'm stuck in traffic again, this city is hopeless lol",
    )
    try:
        capture_account(account_id=account.pk)
    except Exception:  # the demo is still useful without the capture
        logger.exception("publishing.demo.capture_failed")
    actions.follow_archive()
