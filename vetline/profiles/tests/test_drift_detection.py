"""Profile drift end to end on the sandbox (training) network: the employee's live profile is
changed on the network, captured by the real connector into the archive, and compared with the
approved version by the cursor-driven detector kicked by ``records_archived``."""

from __future__ import annotations

from typing import Any

import pytest

from vetline.audit.models import AuditEvent
from vetline.connectors import actions as capture
from vetline.connectors.models import Alert
from vetline.connectors.sandbox import network as sandbox
from vetline.connectors.sandbox.models import SandboxAccount
from vetline.identity.roles import Role
from vetline.profiles import actions
from vetline.profiles.models import DriftCursor, ProfileDrift

pytestmark = pytest.mark.django_db

NAME = "Jane Advisor"
BIO = "Financial advisor at Harbor Point."


@pytest.fixture
def approved(world: Any, profile_policy: Any, sandbox_employee_account: Any) -> Any:
    account = sandbox_employee_account
    revision = actions.save_proposal(
        actor=world.people[Role.EMPLOYEE],
        account=account,
        display_name=NAME,
        bio=BIO,
        title="Advisor",
        submit=True,
    )
    actions.approve_proposal(
        actor=world.people[Role.COMPLIANCE_OFFICER], proposal=revision.proposal, revision_number=1
    )
    return account


def _live(account: Any, **profile: str) -> None:
    timeline = SandboxAccount.objects.get(handle=account.handle)
    sandbox.update_profile(account=timeline, **profile)  # type: ignore[arg-type]


def _capture(account: Any, django_capture_on_commit_callbacks: Any) -> None:
    # The signal is sent on commit; the kicked job runs at once (immediate jobs in tests).
    with django_capture_on_commit_callbacks(execute=True):
        outcome = capture.capture_account(account_id=account.pk)
    assert outcome.status == "captured", outcome


def test_drift_raises_exactly_one_alert_and_review_item(
    approved: Any, world: Any, django_capture_on_commit_callbacks: Any
) -> None:
    account = approved
    # The approved profile goes live: captured, compared, no drift.
    _live(account, display_name=NAME, bio=BIO)
    _capture(account, django_capture_on_commit_callbacks)
    assert not ProfileDrift.objects.exists()
    assert DriftCursor.objects.get().last_record_id > 0

    # The employee edits the live profile on the network without approval.
    _live(account, display_name=NAME, bio="Guaranteed returns! DM me for crypto tips.")
    _capture(account, django_capture_on_commit_callbacks)
    drift = ProfileDrift.objects.get()
    assert drift.status == "open" and drift.account_id == account.pk
    assert drift.differences == [
        {"field": "bio", "approved": BIO, "live": "Guaranteed returns! DM me for crypto tips."}
    ]
    assert drift.first_record.kind == "profile_snapshot"
    alert = Alert.objects.get(code="profile_drift")
    assert drift.alert_id == alert.pk and alert.account_id == account.pk
    assert alert.link == f"/profiles/drift/{drift.pk}/"
    recipients = set(alert.recipients.values_list("pk", flat=True))
    assert recipients == {world.people[Role.EMPLOYEE].pk, world.people[Role.COMPLIANCE_OFFICER].pk}
    assert AuditEvent.objects.filter(action="profiles.drift.open").count() == 1

    # Running again (the periodic catch-up, a retry after a crash) finds nothing new.
    assert actions.detect_drift() == {}
    _capture(account, django_capture_on_commit_callbacks)
    assert (
        ProfileDrift.objects.count() == 1
        and Alert.objects.filter(code="profile_drift").count() == 1
    )

    # A further change updates the same review item: still one item, one alert.
    _live(account, display_name="Jane A.", bio="Guaranteed returns! DM me for crypto tips.")
    _capture(account, django_capture_on_commit_callbacks)
    drift.refresh_from_db()
    assert [d["field"] for d in drift.differences] == ["display_name", "bio"]
    assert (
        ProfileDrift.objects.count() == 1
        and Alert.objects.filter(code="profile_drift").count() == 1
    )

    # The employee restores the approved profile: the item and its alert resolve themselves.
    _live(account, display_name=NAME, bio=BIO)
    _capture(account, django_capture_on_commit_callbacks)
    drift.refresh_from_db()
    assert drift.status == "resolved" and drift.resolved_by is None
    assert "matches the approved version" in drift.resolution
    assert Alert.objects.get(pk=alert.pk).resolved_at is not None


def test_catch_up_without_the_kick(approved: Any) -> None:
    """A crash between the archive's commit and the signal loses nothing: the periodic job
    starts from the cursor."""
    _live(approved, display_name="Someone else", bio=BIO)
    assert capture.capture_account(account_id=approved.pk).status == "captured"
    assert not ProfileDrift.objects.exists()  # no on-commit callbacks ran: no kick
    from vetline.profiles.tasks import detect_drift_job

    counts = detect_drift_job.call_local()
    assert counts == {"drift": 1}
    assert ProfileDrift.objects.get().differences[0]["field"] == "display_name"


def test_no_approved_version_means_nothing_to_compare(
    world: Any, sandbox_employee_account: Any
) -> None:
    _live(sandbox_employee_account, display_name="X", bio="Y")
    capture.capture_account(account_id=sandbox_employee_account.pk)
    assert actions.detect_drift() == {"no_approved": 1}
    assert not ProfileDrift.objects.exists()


def test_compliance_acknowledges_and_resolves(
    approved: Any, world: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from vetline.core.errors import Conflict, Forbidden, ValidationFailed

    _live(approved, display_name=NAME, bio="Changed")
    _capture(approved, django_capture_on_commit_callbacks)
    drift = ProfileDrift.objects.get()
    officer = world.people[Role.COMPLIANCE_OFFICER]
    with pytest.raises(Forbidden):
        actions.resolve_drift(actor=world.people[Role.EMPLOYEE], drift=drift, resolution="ok")
    actions.acknowledge_drift(actor=officer, drift=drift, comment="Asked Jane.")
    with pytest.raises(Conflict):
        actions.acknowledge_drift(actor=officer, drift=drift)
    with pytest.raises(ValidationFailed):
        actions.resolve_drift(actor=officer, drift=drift, resolution=" ")
    actions.resolve_drift(actor=officer, drift=drift, resolution="Jane restored it.")
    drift.refresh_from_db()
    assert drift.status == "resolved" and drift.resolved_by == officer
    assert Alert.objects.get(code="profile_drift").resolved_at is not None
    with pytest.raises(Conflict):
        actions.resolve_drift(actor=officer, drift=drift, resolution="again")


def test_approving_a_version_that_matches_the_live_profile_resolves_drift(
    approved: Any, world: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _live(approved, display_name=NAME, bio="Now at Harbor Point Wealth.")
    _capture(approved, django_capture_on_commit_callbacks)
    assert ProfileDrift.objects.get().status == "open"
    revision = actions.save_proposal(
        actor=world.people[Role.EMPLOYEE],
        account=approved,
        display_name=NAME,
        bio="Now at Harbor Point Wealth.",
        title="Advisor",
        submit=True,
    )
    actions.approve_proposal(
        actor=world.people[Role.COMPLIANCE_OFFICER], proposal=revision.proposal, revision_number=2
    )
    drift = ProfileDrift.objects.get()
    assert drift.status == "resolved" and "newly approved" in drift.resolution
