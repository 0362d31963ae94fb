"""Connecting accounts, consent links, the connection lifecycle, alerts and capture."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from vetline.accounts.models import Credential
from vetline.archive.models import ArchivedRecord, QuarantinedItem
from vetline.audit.models import AuditEvent
from vetline.connectors import actions
from vetline.connectors.base import ActivityPage, TransientError
from vetline.connectors.conftest import CALLBACK, finish
from vetline.connectors.models import Alert, AlertRecipient, CaptureState, Connection, ConsentLink
from vetline.connectors.sandbox import network as sandbox
from vetline.connectors.sandbox.connector import SandboxConnector
from vetline.connectors.sandbox.models import PostKind, SandboxAccount
from vetline.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db


def _actions_logged(prefix: str) -> list[str]:
    return list(
        AuditEvent.objects.filter(action__startswith=prefix)
        .order_by("id")
        .values_list("action", flat=True)
    )


# --- Connecting ---------------------------------------------------------------------------------


def test_admin_connects_a_corporate_account(world: Any, connected: Any) -> None:
    conn = Connection.objects.get(account=connected)
    assert conn.status == "connected"
    assert conn.scopes == ["read", "write", "direct_messages"]
    assert conn.token_expires_at is not None and conn.token_expires_at > timezone.now()
    assert conn.connected_by == world.people[Role.ADMINISTRATOR]
    creds = Credential.objects.filter(account=connected, revoked_at__isnull=True)
    assert {c.kind for c in creds} == {"access_token", "refresh_token"}
    assert all(c.ciphertext and b"sbx_at_" not in bytes(c.ciphertext) for c in creds)
    assert _actions_logged("connectors.") == [
        "connectors.connection.pending",
        "connectors.tokens.store",
        "connectors.connection.connected",
    ]
    assert "sbx_" not in str(list(AuditEvent.objects.values_list("after", flat=True)))


def test_only_administrators_connect(world: Any, sandbox_account: Any) -> None:
    for role in (Role.COMPLIANCE_OFFICER, Role.PUBLISHER, Role.EMPLOYEE):
        with pytest.raises(Forbidden):
            actions.start_connection(
                actor=world.people[role], account=sandbox_account, redirect_uri=CALLBACK
            )


def test_callback_by_someone_else_is_refused(world: Any, sandbox_account: Any) -> None:
    start = actions.start_connection(
        actor=world.people[Role.ADMINISTRATOR], account=sandbox_account, redirect_uri=CALLBACK
    )
    with pytest.raises(NotFound):
        finish(start, world.people[Role.COMPLIANCE_OFFICER])
    finish(start, world.people[Role.ADMINISTRATOR])
    with pytest.raises(NotFound):  # the state is single-use
        finish(start, world.people[Role.ADMINISTRATOR])


def test_network_without_connector_cannot_be_connected(world: Any) -> None:
    from vetline.accounts.models import AccountKind, Network, SocialAccount

    internal = SocialAccount.objects.create(
        network=Network.INTERNAL,
        handle="#all",
        kind=AccountKind.CORPORATE,
        owner=world.people[Role.COMPLIANCE_OFFICER],
    )
    with pytest.raises(ValidationFailed) as info:
        actions.start_connection(
            actor=world.people[Role.ADMINISTRATOR], account=internal, redirect_uri=CALLBACK
        )
    assert info.value.code == "connector_not_installed"


def test_unconfigured_network_is_a_clear_error_and_leaves_no_pending_state(
    world: Any, settings: Any
) -> None:
    """An X account with no client id configured: a ValidationFailed naming the setting, and the
    connection is not left PENDING (CI once found this as a 500 in the API)."""
    settings.VETLINE_CONNECTORS = {}
    with pytest.raises(ValidationFailed) as info:
        actions.start_connection(
            actor=world.people[Role.ADMINISTRATOR], account=world.corporate, redirect_uri=CALLBACK
        )
    assert info.value.code == "connector_unavailable"
    assert "client_id" in str(info.value)
    assert not Connection.objects.filter(account=world.corporate, status="pending").exists()
    assert _actions_logged("connectors.") == []


def test_employee_accounts_need_a_consent_link(world: Any, employee_sandbox: Any) -> None:
    with pytest.raises(ValidationFailed):
        actions.start_connection(
            actor=world.people[Role.ADMINISTRATOR], account=employee_sandbox, redirect_uri=CALLBACK
        )


# --- Consent links ------------------------------------------------------------------------------


def test_consent_link_flow(
    world: Any, employee_sandbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    admin, employee = world.people[Role.ADMINISTRATOR], world.people[Role.EMPLOYEE]
    with django_capture_on_commit_callbacks(execute=True):
        issued = actions.create_consent_link(actor=admin, account=employee_sandbox)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [employee.email]
    assert issued.url in mail.outbox[0].body
    start = actions.redeem_consent_link(actor=employee, token=issued.token, redirect_uri=CALLBACK)
    conn = finish(start, employee)
    assert conn.status == "connected" and conn.connected_by == employee
    # The administrator never held the tokens, and cannot finish the employee's flow.
    assert "connectors.consent_link.use" in _actions_logged("connectors.")


def test_consent_link_is_single_use(world: Any, employee_sandbox: Any) -> None:
    issued = actions.create_consent_link(
        actor=world.people[Role.ADMINISTRATOR], account=employee_sandbox
    )
    employee = world.people[Role.EMPLOYEE]
    actions.redeem_consent_link(actor=employee, token=issued.token, redirect_uri=CALLBACK)
    with pytest.raises(Conflict):
        actions.redeem_consent_link(actor=employee, token=issued.token, redirect_uri=CALLBACK)


def test_consent_link_expires(world: Any, employee_sandbox: Any) -> None:
    issued = actions.create_consent_link(
        actor=world.people[Role.ADMINISTRATOR], account=employee_sandbox
    )
    ConsentLink.objects.filter(pk=issued.link.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    with pytest.raises(ValidationFailed):
        actions.redeem_consent_link(
            actor=world.people[Role.EMPLOYEE], token=issued.token, redirect_uri=CALLBACK
        )


def test_consent_link_refuses_the_wrong_person_and_forgeries(
    world: Any, employee_sandbox: Any, make_person: Any
) -> None:
    issued = actions.create_consent_link(
        actor=world.people[Role.ADMINISTRATOR], account=employee_sandbox
    )
    other_employee = make_person(Role.EMPLOYEE, "other@example.com")
    with pytest.raises(NotFound):
        actions.redeem_consent_link(actor=other_employee, token=issued.token, redirect_uri=CALLBACK)
    with pytest.raises(NotFound):
        actions.redeem_consent_link(
            actor=world.people[Role.EMPLOYEE], token=issued.token[:-2] + "xx", redirect_uri=CALLBACK
        )
    assert ConsentLink.objects.get(pk=issued.link.pk).used_at is None  # still usable by Jane


def test_consent_links_only_for_employee_accounts(world: Any, sandbox_account: Any) -> None:
    with pytest.raises(ValidationFailed):
        actions.create_consent_link(actor=world.people[Role.ADMINISTRATOR], account=sandbox_account)
    with pytest.raises(Forbidden):
        actions.create_consent_link(actor=world.people[Role.EMPLOYEE], account=sandbox_account)


# --- Lifecycle and alerts -------------------------------------------------------------------------


def test_revoked_access_alerts_owner_and_compliance(
    world: Any, connected: Any, django_capture_on_commit_callbacks: Any
) -> None:
    sandbox.revoke_grant(SandboxAccount.objects.get(handle=connected.handle))
    with django_capture_on_commit_callbacks(execute=True):
        outcome = actions.capture_account(account_id=connected.pk)
    assert outcome.status == "access_lost"
    assert Connection.objects.get(account=connected).status == "revoked"
    alert = Alert.objects.get(account=connected, code="access_lost")
    assert alert.severity == "critical" and alert.resolved_at is None
    recipients = set(AlertRecipient.objects.filter(alert=alert).values_list("person", flat=True))
    assert recipients == {world.people[Role.COMPLIANCE_OFFICER].pk}  # owner is the officer here
    assert len(mail.outbox) == 1 and "stopped" in mail.outbox[0].subject
    # The alert links to where people act on it: in the app, and in full in the e-mail.
    assert alert.link == f"/accounts/{connected.pk}/"
    assert mail.outbox[0].body.endswith(f"/accounts/{connected.pk}/")
    # Re-running does not alert again, and capture no longer runs.
    actions.record_access_lost(
        connection_id=alert.account.connection.pk,
        state=actions.ConnectionState.REVOKED,
        reason="again",
    )
    assert Alert.objects.filter(account=connected).count() == 1
    assert actions.capture_account(account_id=connected.pk).status == "not_connected"


def test_expired_token_is_refreshed(world: Any, connected: Any) -> None:
    remote = SandboxAccount.objects.get(handle=connected.handle)
    sandbox.expire_token(remote)
    Connection.objects.filter(account=connected).update(
        token_expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    assert actions.capture_account(account_id=connected.pk).status == "captured"
    conn = Connection.objects.get(account=connected)
    assert conn.status == "connected" and conn.token_expires_at > timezone.now()
    assert "connectors.tokens.refresh" in _actions_logged("connectors.")


def test_expired_and_unrefreshable_alerts(world: Any, employee_sandbox: Any) -> None:
    issued = actions.create_consent_link(
        actor=world.people[Role.ADMINISTRATOR], account=employee_sandbox
    )
    employee = world.people[Role.EMPLOYEE]
    finish(
        actions.redeem_consent_link(actor=employee, token=issued.token, redirect_uri=CALLBACK),
        employee,
    )
    remote = SandboxAccount.objects.get(handle=employee_sandbox.handle)
    sandbox.expire_token(remote)
    sandbox.revoke_grant(remote)
    Connection.objects.filter(account=employee_sandbox).update(
        token_expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    assert actions.capture_account(account_id=employee_sandbox.pk).status == "access_lost"
    alert = Alert.objects.get(account=employee_sandbox)
    people = set(alert.recipients.values_list("pk", flat=True))
    assert people == {employee.pk, world.people[Role.COMPLIANCE_OFFICER].pk}
    assert "consent link" in alert.body
    # Reconnecting resolves the alert.
    issued = actions.create_consent_link(
        actor=world.people[Role.ADMINISTRATOR], account=employee_sandbox
    )
    finish(
        actions.redeem_consent_link(actor=employee, token=issued.token, redirect_uri=CALLBACK),
        employee,
    )
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_disconnect_wipes_tokens(world: Any, connected: Any) -> None:
    actions.disconnect_account(actor=world.people[Role.ADMINISTRATOR], account=connected)
    assert Connection.objects.get(account=connected).status == "disconnected"
    assert not Credential.objects.filter(account=connected, ciphertext__isnull=False).exists()
    with pytest.raises(Conflict):
        actions.disconnect_account(actor=world.people[Role.ADMINISTRATOR], account=connected)


def test_mark_alert_read_is_per_recipient(world: Any, connected: Any) -> None:
    from django.db import transaction

    with transaction.atomic():
        alert = actions.raise_alert(
            code="x",
            severity="warning",
            account=connected,
            title="t",
            body="b",  # type: ignore[arg-type]
        )
    assert alert is not None
    actions.mark_alert_read(actor=world.people[Role.COMPLIANCE_OFFICER], alert_id=alert.pk)
    with pytest.raises(NotFound):
        actions.mark_alert_read(actor=world.people[Role.PUBLISHER], alert_id=alert.pk)


# --- Capture --------------------------------------------------------------------------------------


def _timeline(account: Any) -> SandboxAccount:
    return SandboxAccount.objects.get(handle=account.handle)


def test_scheduler_captures_connected_accounts_only(world: Any, connected: Any) -> None:
    from vetline.connectors.tasks import capture_all_job

    timeline = _timeline(connected)
    sandbox.create_post(timeline=timeline, author=timeline, text="hello")
    assert actions.capture_due_account_ids() == [connected.pk]
    capture_all_job.call_local()
    state = CaptureState.objects.get(account=connected)
    assert state.items_captured == 1 and state.last_success_at is not None and state.has_cursor
    assert ArchivedRecord.objects.filter(account=connected).count() == 1


def test_failures_alert_after_threshold_and_recover(
    world: Any, connected: Any, settings: Any
) -> None:
    settings.VETLINE_CAPTURE_FAILURES_BEFORE_ALERT = 2

    class Broken(SandboxConnector):
        def fetch_activity(self, **kwargs: Any) -> ActivityPage:
            raise TransientError("server error (HTTP 502)")

    broken = Broken()
    assert actions.capture_account(account_id=connected.pk, connector=broken).status == "failed"
    assert not Alert.objects.exists()
    actions.capture_account(account_id=connected.pk, connector=broken)
    assert Connection.objects.get(account=connected).status == "error"
    alert = Alert.objects.get(code="capture_failing")
    assert CaptureState.objects.get(account=connected).last_error == "server error (HTTP 502)"
    assert actions.capture_account(account_id=connected.pk).status == "captured"
    assert Connection.objects.get(account=connected).status == "connected"
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_lag_alert(world: Any, connected: Any, settings: Any) -> None:
    settings.VETLINE_CAPTURE_LAG_ALERT_MINUTES = 10
    actions.capture_account(account_id=connected.pk)
    assert actions.check_capture_lag() == 0
    later = timezone.now() + dt.timedelta(minutes=11)
    assert actions.check_capture_lag(now=later) == 1
    assert actions.check_capture_lag(now=later) == 0  # already open
    assert Alert.objects.get().code == "capture_lagging"


def test_crash_mid_capture_resumes_without_loss_or_duplicates(world: Any, connected: Any) -> None:
    timeline = _timeline(connected)
    customer = sandbox.ensure_account("cust", customer=True)
    for i in range(5):
        post = sandbox.create_post(timeline=timeline, author=timeline, text=f"post {i}")
        sandbox.create_post(
            timeline=timeline,
            author=customer,
            text=f"reply {i}",
            kind=PostKind.REPLY,
            in_reply_to=post,
        )
    total_events = timeline.events.count()  # 10
    from vetline.archive import actions as archive_actions

    real_ingest = archive_actions.ingest_batch
    calls = {"n": 0}

    def crashing_ingest(**kwargs: Any) -> Any:
        calls["n"] += 1
        report = real_ingest(**kwargs)
        if calls["n"] == 2:
            raise RuntimeError("worker killed mid-batch")  # after the inserts, before commit
        return report

    with (
        mock.patch("vetline.connectors.actions.ingest_batch", crashing_ingest),
        pytest.raises(RuntimeError),
    ):
        actions.capture_account(account_id=connected.pk, page_size=2)
    state = CaptureState.objects.get(account=connected)
    first_page_cursor = state.cursor
    assert ArchivedRecord.objects.filter(account=connected).count() == 2  # page 1 only
    assert "internal error" in state.last_error
    # Restart: resumes from the cursor of page 1.
    outcome = actions.capture_account(account_id=connected.pk, page_size=2)
    assert outcome.status == "captured" and outcome.duplicates == 0
    assert ArchivedRecord.objects.filter(account=connected).count() == total_events
    assert int(CaptureState.objects.get(account=connected).cursor) > int(first_page_cursor)
    # Re-running from scratch (a lost cursor) creates no duplicates either.
    CaptureState.objects.filter(account=connected).update(cursor="", has_cursor=False)
    again = actions.capture_account(account_id=connected.pk, page_size=3)
    assert again.ingested == 0 and again.duplicates == total_events
    assert ArchivedRecord.objects.filter(account=connected).count() == total_events
    assert not QuarantinedItem.objects.exists()


def test_cursor_compare_and_set_stops_a_superseded_run(world: Any, connected: Any) -> None:
    timeline = _timeline(connected)
    sandbox.create_post(timeline=timeline, author=timeline, text="one")
    real = SandboxConnector.fetch_activity

    def racing(self: Any, **kwargs: Any) -> ActivityPage:
        page = real(self, **kwargs)
        CaptureState.objects.filter(account=connected).update(cursor="999999", has_cursor=True)
        return page

    with mock.patch.object(SandboxConnector, "fetch_activity", racing):
        outcome = actions.capture_account(account_id=connected.pk)
    assert outcome.status == "superseded"
    assert ArchivedRecord.objects.filter(account=connected).count() == 0


def test_account_tokens_for_connected_accounts_only(
    world: Any, connected: Any, sandbox_account: Any
) -> None:
    connector, tokens = actions.account_tokens(connected)
    assert isinstance(connector, SandboxConnector) and tokens.access_token.startswith("sbx_at_")
    actions.disconnect_account(actor=world.people[Role.ADMINISTRATOR], account=connected)
    with pytest.raises(ValidationFailed) as info:
        actions.account_tokens(connected)
    assert info.value.code == "not_connected"


# --- App passwords ----------------------------------------------------------------------------


def test_admin_connects_with_an_app_password(
    world: Any, sandbox_account: Any, django_capture_on_commit_callbacks: Any
) -> None:
    admin = world.people[Role.ADMINISTRATOR]
    with django_capture_on_commit_callbacks(execute=True):
        connection = actions.connect_with_app_password(
            actor=admin,
            account=sandbox_account,
            identifier="@acme-training",
            app_password="abcd-efgh-ijkl",
        )
    assert connection.status == "connected" and connection.connected_by == admin
    assert connection.remote_account_id.startswith("sbx-account-")
    creds = Credential.objects.filter(account=sandbox_account, revoked_at__isnull=True)
    assert {c.kind for c in creds} == {"access_token", "refresh_token"}
    assert _actions_logged("connectors.") == [
        "connectors.tokens.store",
        "connectors.connection.connected",
        "connectors.connection.probe",  # the capability probe ran after the commit
    ]
    events = str(list(AuditEvent.objects.values_list("before", "after")))
    assert "abcd-efgh-ijkl" not in events  # the app password is never kept
    assert Connection.objects.get(pk=connection.pk).capability_report["allowed"]
    assert actions.capture_account(account_id=sandbox_account.pk).status == "captured"


def test_app_password_for_another_account_is_refused(world: Any, sandbox_account: Any) -> None:
    with pytest.raises(ValidationFailed) as info:
        actions.connect_with_app_password(
            actor=world.people[Role.ADMINISTRATOR],
            account=sandbox_account,
            identifier="someone-else",
            app_password="abcd",
        )
    assert info.value.code == "wrong_account"
    assert not Connection.objects.filter(account=sandbox_account, status="connected").exists()
    assert not Credential.objects.filter(account=sandbox_account).exists()


def test_app_password_who_may(world: Any, sandbox_account: Any, employee_sandbox: Any) -> None:
    for role in (Role.COMPLIANCE_OFFICER, Role.PUBLISHER, Role.EMPLOYEE):
        with pytest.raises(Forbidden):
            actions.connect_with_app_password(
                actor=world.people[role],
                account=sandbox_account,
                identifier="acme-training",
                app_password="abcd",
            )
    # A personal-for-business account: its owner only, never an administrator.
    with pytest.raises(Forbidden):
        actions.connect_with_app_password(
            actor=world.people[Role.ADMINISTRATOR],
            account=employee_sandbox,
            identifier="jane-training",
            app_password="abcd",
        )
    link = actions.create_consent_link(
        actor=world.people[Role.ADMINISTRATOR], account=employee_sandbox
    ).link
    connection = actions.connect_with_app_password(
        actor=world.people[Role.EMPLOYEE],
        account=employee_sandbox,
        identifier="jane-training",
        app_password="abcd",
    )
    assert connection.status == "connected"
    link.refresh_from_db()
    assert link.used_at is not None  # the consent link asking for it is used up


def test_app_password_reconnects_a_disconnected_account(world: Any, connected: Any) -> None:
    admin = world.people[Role.ADMINISTRATOR]
    actions.disconnect_account(actor=admin, account=connected)
    actions.connect_with_app_password(
        actor=admin, account=connected, identifier="acme-training", app_password="abcd"
    )
    assert Connection.objects.get(account=connected).status == "connected"
    assert _actions_logged("connectors.connection.")[-3:] == [
        "connectors.connection.disconnected",
        "connectors.connection.pending",
        "connectors.connection.connected",
    ]


def test_app_password_needs_a_network_that_takes_one(world: Any) -> None:
    from vetline.accounts.models import AccountKind, Network, SocialAccount

    x_account = SocialAccount.objects.create(
        network=Network.X,
        handle="acme",
        kind=AccountKind.CORPORATE,
        owner=world.people[Role.COMPLIANCE_OFFICER],
    )
    with pytest.raises(ValidationFailed) as info:
        actions.connect_with_app_password(
            actor=world.people[Role.ADMINISTRATOR],
            account=x_account,
            identifier="acme",
            app_password="abcd",
        )
    assert info.value.code == "app_password_unsupported"


# --- Capability probe ---------------------------------------------------------------------------


class _NarrowSandbox(SandboxConnector):
    """The sandbox, declaring that direct messages need a scope its grant does not include."""

    scope_requirements = {"capture_direct_messages": ("read", "messages.archive")}


def test_probe_stores_the_report_and_alerts_on_missing_scopes(world: Any, connected: Any) -> None:
    connection = Connection.objects.get(account=connected)
    report = actions.probe_connection(connection_id=connection.pk, connector=_NarrowSandbox())
    assert report is not None
    assert "capture_direct_messages" in report.missing
    assert report.missing["capture_direct_messages"] == "scope not granted: messages.archive"
    assert "publish_post" in report.allowed
    connection.refresh_from_db()
    assert connection.capability_report["missing"] == dict(report.missing)
    assert connection.capability_checked_at is not None
    alert = Alert.objects.get(code="capabilities_missing", account=connected)
    assert "capture direct messages" in alert.body
    assert {d.person for d in alert.deliveries.all()} >= {world.people[Role.COMPLIANCE_OFFICER]}
    # Everything granted: the alert is resolved.
    actions.probe_connection(connection_id=connection.pk)
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert _actions_logged("connectors.connection.probe") == ["connectors.connection.probe"] * 2


def test_probe_request_needs_a_connection(world: Any, sandbox_account: Any) -> None:
    with pytest.raises(ValidationFailed):
        actions.request_probe(actor=world.people[Role.ADMINISTRATOR], account=sandbox_account)
    with pytest.raises(Forbidden):
        actions.request_probe(actor=world.people[Role.PUBLISHER], account=sandbox_account)


# --- Account context and malformed items ----------------------------------------------------------


def test_stored_tokens_name_the_account(world: Any, connected: Any) -> None:
    _, tokens = actions.account_tokens(connected)
    assert tokens.remote_handle == connected.handle
    ref = actions.account_ref(connected)
    assert ref.handle == "acme-training" and ref.remote_account_id.startswith("sbx-account-")


def test_connector_reasons_for_malformed_items_are_kept(world: Any, connected: Any) -> None:
    from vetline.connectors.base import Malformed

    class Garbled(SandboxConnector):
        def fetch_activity(self, **kwargs: Any) -> ActivityPage:
            return ActivityPage(
                items=[
                    Malformed(b'{"id": "9", "text": "trunc', "the post was cut short", "9"),
                    {"remote_id": "ok-1", "kind": "post", "direction": "outbound", "text": "Hi"},
                ],
                cursor="1",
            )

    outcome = actions.capture_account(account_id=connected.pk, connector=Garbled())
    assert (outcome.ingested, outcome.quarantined) == (1, 1)
    quarantined = QuarantinedItem.objects.get(account=connected)
    assert bytes(quarantined.raw) == b'{"id": "9", "text": "trunc'  # as the network sent it
    event = AuditEvent.objects.get(action="connectors.capture.malformed")
    (entry,) = event.after["items"]
    assert entry["connector_reason"] == "the post was cut short"
    assert entry["quarantine_id"] == quarantined.pk and entry["remote_id"] == "9"


def test_a_failing_probe_leaves_the_connection_as_it_is(world: Any, connected: Any) -> None:
    class Down(SandboxConnector):
        def probe(self, **kwargs: Any) -> Any:
            raise TransientError("server error (HTTP 503)")

    connection = Connection.objects.get(account=connected)
    assert actions.probe_connection(connection_id=connection.pk, connector=Down()) is None
    connection.refresh_from_db()
    assert connection.status == "connected" and connection.capability_checked_at is None
    assert not Alert.objects.filter(code="capabilities_missing").exists()
