"""Profile vetting in the demo organisation (Harbor Point Securities), made through the same
actions as real use. Idempotent: an account that already has a proposal is left alone.

* Jordan Blake's LinkedIn profile: approved by the Chief Compliance Officer.
* Jordan's X profile: waiting in the vetting inbox, with a screening hit to look at.
* Elena Petrova's LinkedIn profile: returned with a comment.
* Jordan's training-sandbox profile: approved, then changed on the network without approval,
  captured, and flagged as drift (an alert and a review item).
"""

from __future__ import annotations

import logging
from typing import Any

from vetline.accounts.models import Network, SocialAccount
from vetline.identity.models import Person
from vetline.profiles import actions
from vetline.profiles.models import ProfileProposal
from vetline.profiles.photos import tiny_png

logger = logging.getLogger(__name__)

COMPLIANCE = "compliance@harborpoint.example"
JORDAN_BIO = (
    "Helping families in Harbor Point plan for retirement since 2009. Investing involves risk."
)
JORDAN_LINK = "https://harborpoint.example/advisors/jordan-blake"


def _account(network: str, handle: str) -> SocialAccount | None:
    return SocialAccount.objects.filter(network=network, handle=handle).first()


def _fresh(account: SocialAccount | None) -> bool:
    return account is not None and not ProfileProposal.objects.filter(account=account).exists()


def load(people: dict[str, Person]) -> int:
    """Create the demo's profile proposals (and one drift). Returns how many were made."""
    officer = people[COMPLIANCE]
    made = 0
    linkedin = _account(Network.LINKEDIN, "jordan-blake-cfp")
    if linkedin is not None and _fresh(linkedin):
        rev = actions.save_proposal(
            actor=linkedin.owner,
            account=linkedin,
            display_name="Jordan Blake, CFP®",
            title="Financial Advisor",
            bio=JORDAN_BIO,
            links=[JORDAN_LINK],
            photo=tiny_png(),
            submit=True,
        )
        actions.approve_proposal(
            actor=officer, proposal=rev.proposal, revision_number=rev.number, comment="OK."
        )
        made += 1
    x = _account(Network.X, "@JordanBlakeCFP")
    if x is not None and _fresh(x):
        actions.save_proposal(
            actor=x.owner,
            account=x,
            display_name="Jordan Blake",
            title="Wealth rockstar",
            bio="Advisor at Harbor Point. Market views, retirement tips. Not advice.",
            links=["https://harborpoint.example/advisors/jordan-blake"],
            submit=True,
        )
        made += 1
    elena = _account(Network.LINKEDIN, "elena-petrova-advisor")
    if elena is not None and _fresh(elena):
        rev = actions.save_proposal(
            actor=elena.owner,
            account=elena,
            display_name="Elena Petrova",
            title="Advisor",
            bio="Advisor at Harbor Point Securities.",
            submit=True,
        )
        actions.reject_proposal(
            actor=officer,
            proposal=rev.proposal,
            revision_number=rev.number,
            comment="Use your registered title (Registered Representative).",
        )
        made += 1
    sandbox = _account(Network.SANDBOX, "jordan-blake-training")
    if sandbox is not None and _fresh(sandbox):
        made += _sandbox_drift(sandbox, officer)
    return made


def _sandbox_drift(account: SocialAccount, officer: Person) -> int:
    from vetline.connectors.actions import capture_account
    from vetline.connectors.sandbox import network as sandbox
    from vetline.connectors.sandbox.models import SandboxAccount

    rev = actions.save_proposal(
        actor=account.owner,
        account=account,
        display_name="Jordan Blake",
        bio="Financial advisor at Harbor Point (training).",
        submit=True,
    )
    actions.approve_proposal(actor=officer, proposal=rev.proposal, revision_number=rev.number)
    timeline = SandboxAccount.objects.filter(handle=account.handle).first()
    if timeline is None:
        return 1
    sandbox.update_profile(
        account=timeline,
        display_name="Jordan Blake",
        bio="DM me for guaranteed returns and hot crypto tips!",
    )
    outcome: Any = capture_account(account_id=account.pk)
    counts = actions.detect_drift()
    logger.info(
        "profiles.demo.drift", extra={"capture": outcome.status, "drift": counts.get("drift", 0)}
    )
    return 1
