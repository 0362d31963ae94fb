"""Legal holds reach the S3 object legal hold of the held records' attachment blobs.

Against moto's standalone S3 server with Object Lock (see ``test_blobs_s3.py``: no S3 service is
reachable from the tests; the code talks real boto3 over HTTP to it). moto implements
``PutObjectLegalHold`` / ``GetObjectLegalHold`` and refuses to delete a version under legal
hold (``AccessDenied``), as S3 does. What moto cannot be made to do, refuse
``PutObjectLegalHold`` for lack of permission, is played by a recorded S3 ``AccessDenied``
answer (the error S3 documents for a request the credentials do not allow), returned through
botocore's own ``before-call`` hook, so the real client code path handles it.
"""

# The moto server and bucket fixtures are imported from the S3 backend's tests; test arguments
# named after them are what pytest injects, not redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from io import StringIO
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from vetline.archive import retention_actions
from vetline.archive.blobs import LocalBlobStore, default_store
from vetline.archive.models_retention import (
    BlobHoldState,
    BlobHoldSyncRun,
    BlobHoldSyncStatus,
    HeldBlob,
    LegalHold,
)
from vetline.archive.retention_actions import (
    SYNC_ALERT_AFTER_FAILURES,
    SYNC_ALERT_CODE,
    place_legal_hold,
    release_legal_hold,
    sync_blob_legal_holds,
    update_legal_hold_scope,
)
from vetline.archive.tests import test_blobs_s3 as s3_tests
from vetline.archive.tests.conftest import item
from vetline.archive.tests.test_blobs_s3 import S3, s3, s3_endpoint  # noqa: F401  (fixtures)
from vetline.audit.models import AuditEvent
from vetline.conftest import last_audit_id
from vetline.connectors.models import Alert
from vetline.core.context import RequestContext, use_context
from vetline.core.errors import Forbidden, ValidationFailed
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db

OnCommit = Callable[..., Any]


def _place(world: Any, capture: OnCommit, **kw: Any) -> LegalHold:
    """Place a hold as a compliance officer; the reconciliation it queues after commit runs
    (the job queue is immediate in the tests)."""
    with use_context(RequestContext(channel="test")), capture(execute=True):
        return place_legal_hold(
            actor=world.people[Role.COMPLIANCE_OFFICER], matter_name="SEC v. Acme", **kw
        )


def _release(world: Any, capture: OnCommit, hold: LegalHold) -> None:
    with use_context(RequestContext(channel="test")), capture(execute=True):
        release_legal_hold(
            actor=world.people[Role.COMPLIANCE_OFFICER], hold=hold, reason="matter closed"
        )


def _sync() -> BlobHoldSyncRun:
    with use_context(RequestContext(channel="test")):
        run = sync_blob_legal_holds(trigger="test")
    assert run is not None
    return run


def _held_in_s3(s3: S3, *names: str) -> dict[str, bool]:
    return {n: s3.store.get_object_legal_hold(n) for n in names}


def _row(name: str) -> HeldBlob:
    return HeldBlob.objects.get(sha256=name)


def _blobs(s3: S3, *contents: bytes) -> list[str]:
    return [s3.store.put(c) for c in contents]


# --------------------------------------------------------------------------- place and release


def test_placing_a_hold_puts_exactly_the_held_records_blobs_on_legal_hold(
    s3: S3, ingest: Any, world: Any, django_capture_on_commit_callbacks: OnCommit
) -> None:
    a, b, shared, other = _blobs(s3, b"held a", b"held b", b"both", b"not held")
    ingest([item("p1", attachments=[a, shared]), item("p2", attachments=[b])])
    ingest([item("o1", attachments=[other])], account=world.other)
    start = last_audit_id()

    hold = _place(world, django_capture_on_commit_callbacks, accounts=[world.corporate])

    assert _held_in_s3(s3, a, b, shared, other) == {a: True, b: True, shared: True, other: False}
    assert {r.sha256 for r in HeldBlob.objects.filter(store_state=BlobHoldState.ON)} == {
        a,
        b,
        shared,
    }
    assert all(r.store == s3.store.where for r in HeldBlob.objects.all())
    assert set(_row(a).holds.values_list("pk", flat=True)) == {hold.pk}
    run = BlobHoldSyncRun.objects.get()
    assert (run.status, run.trigger, run.turned_on, run.turned_off, run.failed) == (
        BlobHoldSyncStatus.DONE,
        "hold",
        3,
        0,
        0,
    )
    assert run.per_hold == {str(hold.pk): {"blobs": 3, "on": 3}}
    # one event for the run (counts, per-hold summary), one for the hold; none per blob
    events = AuditEvent.objects.filter(id__gt=start).order_by("id")
    assert [e.action for e in events] == [
        "archive.hold.place",
        "archive.hold.blobs_sync",
        "archive.hold.blobs",
    ]
    sync_event, hold_event = events[1], events[2]
    assert sync_event.after["turned_on"] == 3 and sync_event.after["wanted"] == 3
    assert sync_event.after["per_hold"] == {str(hold.pk): {"blobs": 3, "on": 3}}
    assert hold_event.object_id == str(hold.pk)
    assert hold_event.before is None or hold_event.before == {}
    assert hold_event.after["on"] == 3 and hold_event.after["run_id"] == run.pk
    assert hold.blob_legal_holds()["on"] == 3 and hold.blob_legal_holds()["supported"]

    # idempotent: a second run asks the store nothing and writes no audit event
    start = last_audit_id()
    again = _sync()
    assert (again.changed, again.turned_on, again.turned_off) == (0, 0, 0)
    assert not AuditEvent.objects.filter(id__gt=start).exists()

    # release: off for every blob, rows kept as history
    _release(world, django_capture_on_commit_callbacks, hold)
    assert _held_in_s3(s3, a, b, shared, other) == dict.fromkeys((a, b, shared, other), False)
    assert HeldBlob.objects.count() == 3
    assert not HeldBlob.objects.filter(wanted=True).exists()
    assert set(HeldBlob.objects.values_list("store_state", flat=True)) == {BlobHoldState.OFF}
    assert all(r.released_at is not None for r in HeldBlob.objects.all())
    last = BlobHoldSyncRun.objects.order_by("-pk").first()
    assert last is not None and last.turned_off == 3
    hold_events = AuditEvent.objects.filter(action="archive.hold.blobs", object_id=str(hold.pk))
    assert hold_events.count() == 2
    assert hold_events.order_by("-id")[0].after["blobs"] == 0


def test_a_blob_two_holds_share_stays_on_hold_until_both_are_released(
    s3: S3, ingest: Any, world: Any, django_capture_on_commit_callbacks: OnCommit
) -> None:
    shared, only_first = _blobs(s3, b"on both accounts", b"only on the first")
    ingest([item("p1", attachments=[shared, only_first])])
    ingest([item("o1", attachments=[shared])], account=world.other)
    first = _place(world, django_capture_on_commit_callbacks, accounts=[world.corporate])
    second = _place(world, django_capture_on_commit_callbacks, accounts=[world.other])
    assert set(_row(shared).holds.values_list("pk", flat=True)) == {first.pk, second.pk}

    _release(world, django_capture_on_commit_callbacks, first)
    assert _held_in_s3(s3, shared, only_first) == {shared: True, only_first: False}
    assert set(_row(shared).holds.values_list("pk", flat=True)) == {second.pk}

    _release(world, django_capture_on_commit_callbacks, second)
    assert _held_in_s3(s3, shared, only_first) == {shared: False, only_first: False}


def test_editing_a_holds_scope_moves_the_blob_holds(
    s3: S3, ingest: Any, world: Any, django_capture_on_commit_callbacks: OnCommit
) -> None:
    march, april = _blobs(s3, b"in March", b"in April")
    ingest(
        [
            item("p1", attachments=[march], network_timestamp="2025-03-10T10:00:00Z"),
            item("p2", attachments=[april], network_timestamp="2025-04-10T10:00:00Z"),
        ]
    )
    hold = _place(
        world,
        django_capture_on_commit_callbacks,
        accounts=[world.corporate],
        date_from=dt.date(2025, 3, 1),
        date_to=dt.date(2025, 3, 31),
    )
    assert _held_in_s3(s3, march, april) == {march: True, april: False}
    start = last_audit_id()

    with (
        use_context(RequestContext(channel="test")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        update_legal_hold_scope(
            actor=world.people[Role.COMPLIANCE_OFFICER],
            hold=hold,
            accounts=[world.corporate],
            people=[],
            date_from=dt.date(2025, 4, 1),
        )

    assert _held_in_s3(s3, march, april) == {march: False, april: True}
    update = AuditEvent.objects.get(id__gt=start, action="archive.hold.update")
    assert update.before["date_to"] == "2025-03-31" and update.after["date_to"] is None
    with pytest.raises(ValidationFailed):
        update_legal_hold_scope(
            actor=world.people[Role.COMPLIANCE_OFFICER], hold=hold, accounts=[], people=[]
        )
    with pytest.raises(Forbidden):
        update_legal_hold_scope(
            actor=world.people[Role.PUBLISHER], hold=hold, accounts=[world.other], people=[]
        )


def test_records_archived_inside_an_active_hold_get_their_blobs_held(
    s3: S3, ingest: Any, world: Any, django_capture_on_commit_callbacks: OnCommit
) -> None:
    (early,) = _blobs(s3, b"before the hold")
    with django_capture_on_commit_callbacks(execute=True):
        ingest([item("p1", attachments=[early])])
    assert not BlobHoldSyncRun.objects.exists()  # no active hold: ingest kicks nothing
    _place(world, django_capture_on_commit_callbacks, accounts=[world.corporate])
    (late,) = _blobs(s3, b"archived after the hold")

    # the batch's commit sends records_archived; the archive's receiver kicks a run
    with django_capture_on_commit_callbacks(execute=True):
        ingest([item("p2", attachments=[late])])

    assert _held_in_s3(s3, early, late) == {early: True, late: True}
    assert BlobHoldSyncRun.objects.order_by("-pk").values_list("trigger", flat=True)[0] == "ingest"


# --------------------------------------------------------------------------- crashes and runs


def test_a_crash_between_the_store_and_the_table_converges_on_the_next_run(
    s3: S3,
    ingest: Any,
    world: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    a, b = _blobs(s3, b"crash a", b"crash b")
    ingest([item("p1", attachments=[a, b])])

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("worker killed after S3 answered")

    with monkeypatch.context() as patch:
        patch.setattr(retention_actions, "_record_answers", crash)
        # the job fails (the queue logs it); the hold itself is placed
        _place(world, django_capture_on_commit_callbacks, accounts=[world.corporate])
    hold = LegalHold.objects.get()
    # S3 has the hold; the table only knows it asked (pending), not the answer
    assert _held_in_s3(s3, a, b) == {a: True, b: True}
    assert set(HeldBlob.objects.values_list("store_state", flat=True)) == {BlobHoldState.PENDING}
    failed = BlobHoldSyncRun.objects.get()
    assert failed.status == BlobHoldSyncStatus.FAILED and "worker killed" in failed.error

    # the hold is released before any run recovers: pending rows are asked again, for off
    _release(world, django_capture_on_commit_callbacks, hold)
    assert _held_in_s3(s3, a, b) == {a: False, b: False}
    assert set(HeldBlob.objects.values_list("store_state", flat=True)) == {BlobHoldState.OFF}


def test_a_crash_before_the_store_answered_is_retried_and_recorded(
    s3: S3,
    ingest: Any,
    world: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    (a,) = _blobs(s3, b"crash before S3")
    ingest([item("p1", attachments=[a])])
    real = type(s3.store).set_legal_hold

    def dies(self: Any, name: str, on: bool) -> Any:
        raise KeyboardInterrupt  # the worker is stopped mid-call

    with monkeypatch.context() as patch:
        patch.setattr(type(s3.store), "set_legal_hold", dies)
        # the queue's worker reports the interrupted job and returns (huey)
        _place(world, django_capture_on_commit_callbacks, accounts=[world.corporate])
    assert type(s3.store).set_legal_hold is real
    # the run row still says running (the process died): a later run takes over once its
    # heartbeat is older than the lease; a run within the lease is asked to go round again
    stuck = BlobHoldSyncRun.objects.get()
    assert stuck.status == BlobHoldSyncStatus.RUNNING
    with use_context(RequestContext(channel="test")):
        assert sync_blob_legal_holds(trigger="test") is None
    stuck.refresh_from_db()
    assert stuck.rerun_requested
    BlobHoldSyncRun.objects.filter(pk=stuck.pk).update(
        heartbeat_at=timezone.now() - retention_actions.SYNC_LEASE - dt.timedelta(seconds=1)
    )

    run = _sync()
    stuck.refresh_from_db()
    assert stuck.status == BlobHoldSyncStatus.ABANDONED
    assert run.turned_on == 1 and _held_in_s3(s3, a) == {a: True}
    assert _row(a).store_state == BlobHoldState.ON


# --------------------------------------------------------------------------- refusals


@pytest.fixture
def s3_refuses_legal_holds(s3: S3) -> Iterator[list[str]]:
    """The bucket's policy denies s3:PutObjectLegalHold: every such call gets S3's documented
    403 AccessDenied answer. Yields the keys asked about."""
    asked: list[str] = []

    def deny(params: dict[str, Any], **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        asked.append(str(params.get("url_path", "")))
        response = AWSResponse("", 403, {}, None)  # type: ignore[no-untyped-call]
        parsed = {
            "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
            "ResponseMetadata": {"HTTPStatusCode": 403, "HTTPHeaders": {}},
        }
        return response, parsed

    events = s3.store.client.meta.events
    events.register("before-call.s3.PutObjectLegalHold", deny, unique_id="vetline-deny")
    try:
        yield asked
    finally:
        events.unregister("before-call.s3.PutObjectLegalHold", unique_id="vetline-deny")


def test_a_store_refusing_is_reported_retried_and_alerts_compliance(
    s3: S3,
    s3_refuses_legal_holds: list[str],
    ingest: Any,
    world: Any,
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    a, b = _blobs(s3, b"refused a", b"refused b")
    ingest([item("p1", attachments=[a, b])])
    hold = _place(world, django_capture_on_commit_callbacks, accounts=[world.corporate])

    first = BlobHoldSyncRun.objects.get()
    assert first.status == BlobHoldSyncStatus.DONE  # reported, not raised
    assert (first.turned_on, first.failed) == (0, 2)
    assert {f["outcome"] for f in first.failures} == {"refused"}
    assert "AccessDenied" in first.failures[0]["detail"]
    assert "s3:PutObjectLegalHold" in first.failures[0]["detail"]
    assert _row(a).failures == 1 and _row(a).store_state == BlobHoldState.PENDING
    assert _held_in_s3(s3, a, b) == {a: False, b: False}
    assert hold.blob_legal_holds()["failing"] == 2
    assert not Alert.objects.filter(code=SYNC_ALERT_CODE).exists()

    for _ in range(SYNC_ALERT_AFTER_FAILURES - 1):
        _sync()  # retried each run
    assert len(s3_refuses_legal_holds) == 2 * SYNC_ALERT_AFTER_FAILURES
    alert = Alert.objects.get(code=SYNC_ALERT_CODE, resolved_at__isnull=True)
    assert alert.severity == "critical" and "2 held attachment blob(s)" in alert.title
    assert set(alert.recipients.all()) >= {world.people[Role.COMPLIANCE_OFFICER]}
    _sync()
    assert Alert.objects.filter(code=SYNC_ALERT_CODE).count() == 1  # not raised again

    # the CLI says so and fails
    out = StringIO()
    with pytest.raises(CommandError, match="2 blob"):
        call_command("archive", "legal-hold-sync", "--quiet", stdout=out)
    assert "refused" in out.getvalue()


def test_once_the_store_accepts_again_the_blobs_are_held_and_the_alert_closes(
    s3: S3, ingest: Any, world: Any, django_capture_on_commit_callbacks: OnCommit
) -> None:
    (a,) = _blobs(s3, b"recovers")
    ingest([item("p1", attachments=[a])])
    events = s3.store.client.meta.events

    def deny(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        parsed = {
            "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
            "ResponseMetadata": {"HTTPStatusCode": 403, "HTTPHeaders": {}},
        }
        return AWSResponse("", 403, {}, None), parsed  # type: ignore[no-untyped-call]

    events.register("before-call.s3.PutObjectLegalHold", deny, unique_id="vetline-deny2")
    try:
        _place(world, django_capture_on_commit_callbacks, accounts=[world.corporate])
        for _ in range(SYNC_ALERT_AFTER_FAILURES - 1):
            _sync()
    finally:
        events.unregister("before-call.s3.PutObjectLegalHold", unique_id="vetline-deny2")
    assert Alert.objects.filter(code=SYNC_ALERT_CODE, resolved_at__isnull=True).exists()

    run = _sync()
    assert run.turned_on == 1 and _held_in_s3(s3, a) == {a: True}
    row = _row(a)
    assert (row.failures, row.last_error, row.store_state) == (0, "", BlobHoldState.ON)
    assert not Alert.objects.filter(code=SYNC_ALERT_CODE, resolved_at__isnull=True).exists()


def test_an_unusable_store_counts_failures_and_leaves_confirmed_holds_alone(
    s3: S3,
    settings: Any,
    ingest: Any,
    world: Any,
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    held, later = _blobs(s3, b"held before", b"held while the store is down")
    ingest([item("p1", attachments=[held])])
    ingest([item("o1", attachments=[later])], account=world.other)
    first = _place(world, django_capture_on_commit_callbacks, accounts=[world.corporate])
    settings.VETLINE_S3_BUCKET = ""  # a broken configuration: the store cannot be built

    second = _place(world, django_capture_on_commit_callbacks, accounts=[world.other])

    run = BlobHoldSyncRun.objects.order_by("-pk")[0]
    assert run.status == BlobHoldSyncStatus.DONE and run.failed == 1
    assert "No S3 bucket is configured" in run.failures[0]["detail"]
    assert _row(held).store_state == BlobHoldState.ON  # not put in doubt
    assert (_row(later).store_state, _row(later).failures) == (BlobHoldState.OFF, 1)
    assert run.per_hold == {
        str(first.pk): {"blobs": 1, "on": 1},
        str(second.pk): {"blobs": 1, "on": 0},
    }


def test_a_held_blob_missing_from_the_store_is_a_failure(
    s3: S3, ingest: Any, world: Any, django_capture_on_commit_callbacks: OnCommit
) -> None:
    missing = s3.store.put(b"lost later", retain_until=timezone.now() - dt.timedelta(days=1))
    ingest([item("p1", attachments=[missing])])
    (version,), _ = s3.versions(missing)  # stored unlocked, then lost from the bucket
    s3.client.delete_object(Bucket=s3.bucket, Key=missing, VersionId=version)
    _place(world, django_capture_on_commit_callbacks, accounts=[world.corporate])
    run = BlobHoldSyncRun.objects.get()
    assert run.failed == 1 and run.failures[0]["outcome"] == "missing"


# --------------------------------------------------------------------------- local backend


def test_local_backend_keeps_the_table_and_switching_to_s3_applies_it(
    settings: Any,
    ingest: Any,
    world: Any,
    django_capture_on_commit_callbacks: OnCommit,
    s3_endpoint: str,
) -> None:
    local = default_store()
    assert isinstance(local, LocalBlobStore) and not local.legal_hold_supported
    a = local.put(b"a local attachment")
    ingest([item("p1", attachments=[a])])

    hold = _place(world, django_capture_on_commit_callbacks, accounts=[world.corporate])

    run = BlobHoldSyncRun.objects.get()
    assert run.status == BlobHoldSyncStatus.DONE and run.failed == 0 and run.changed == 0
    row = _row(a)
    assert row.wanted and row.store_state == BlobHoldState.OFF
    summary = hold.blob_legal_holds()
    assert (summary["blobs"], summary["on"], summary["supported"]) == (1, 0, False)

    # the firm moves to S3 (the blob copied over): the next run applies the recorded holds
    bucket = s3_tests._bucket_name()
    s3_tests._client(s3_endpoint).create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    settings.VETLINE_BLOB_BACKEND = "s3"
    settings.VETLINE_S3_BUCKET = bucket
    settings.VETLINE_S3_ENDPOINT_URL = s3_endpoint
    settings.VETLINE_S3_REGION = s3_tests.REGION
    store = default_store()
    store.put(b"a local attachment")
    run = _sync()
    assert run.turned_on == 1
    assert store.get_object_legal_hold(a)  # type: ignore[union-attr]


# --------------------------------------------------------------------------- page and CLI


def test_the_hold_page_shows_how_many_blobs_carry_the_legal_hold(
    s3: S3,
    ingest: Any,
    world: Any,
    login: Any,
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    a, b = _blobs(s3, b"page a", b"page b")
    ingest([item("p1", attachments=[a, b])])
    hold = _place(world, django_capture_on_commit_callbacks, accounts=[world.corporate])
    client = login(world.people[Role.COMPLIANCE_OFFICER])

    page = client.get(reverse("archive:retention:hold", args=[hold.pk]))

    assert page.status_code == 200
    assert "2 of 2 carry the blob store\N{RIGHT SINGLE QUOTATION MARK}s legal hold" in (
        page.content.decode()
    )


def test_cli_runs_the_reconciliation_and_reports_it(
    s3: S3, ingest: Any, world: Any, django_capture_on_commit_callbacks: OnCommit
) -> None:
    (a,) = _blobs(s3, b"cli")
    ingest([item("p1", attachments=[a])])
    with use_context(RequestContext(channel="test")):
        hold = place_legal_hold(  # committed without its kick: the CLI does the work
            actor=world.people[Role.COMPLIANCE_OFFICER],
            matter_name="CLI",
            accounts=[world.corporate],
        )
    out = StringIO()
    call_command("archive", "legal-hold-sync", "--json", "--quiet", stdout=out)
    result = json.loads(out.getvalue())
    assert result["turned_on"] == 1 and result["failed"] == 0
    assert result["per_hold"] == {str(hold.pk): {"blobs": 1, "on": 1}}
    assert BlobHoldSyncRun.objects.get(pk=result["run_id"]).trigger == "cli"
    assert _held_in_s3(s3, a) == {a: True}
