"""The S3 Object Lock blob backend, against a real S3-API HTTP server.

No S3 service (AWS, MinIO) is reachable from the test machines, so moto's standalone server
(``moto.server.ThreadedMotoServer``) stands in for S3: it is started on a free loopback port once
per test session, and the code under test talks to it with real boto3 over HTTP, exactly as it
talks to S3 in production (endpoint, SigV4 signing, Object Lock headers, version ids, error
codes). moto enforces compliance-mode locks on deletion, but it does *not* refuse shortening a
retention; so the tests that retention is never shortened test Vetline's own logic.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from moto.server import ThreadedMotoServer

from vetline.archive.blobs import (
    BlobError,
    DeletionOutcome,
    LegalHoldOutcome,
    LocalBlobStore,
    default_store,
    retain_until_for,
)
from vetline.archive.blobs_s3 import S3BlobStore, lock_date
from vetline.archive.models import ArchivedRecord
from vetline.archive.models_retention import DisposalRun, RecordClass
from vetline.archive.retention import DisposalReport, expires_at
from vetline.archive.retention_actions import (
    dispose_expired,
    place_legal_hold,
    release_legal_hold,
)
from vetline.archive.tests.conftest import item
from vetline.archive.verification import verify_database
from vetline.audit.models import AuditEvent
from vetline.conftest import last_audit_id
from vetline.core.context import RequestContext, use_context
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db

REGION = "us-east-1"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server on a free loopback port, standing in for S3 (no S3 service
    is reachable from the tests). boto3 finds static test credentials through its ordinary
    chain (the environment), as it finds real ones in production."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "vetline-test")
        env.setenv("AWS_SECRET_ACCESS_KEY", "vetline-test")
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        env.setenv("NO_PROXY", ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1"])))
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        try:
            # A plain HTTP request: the server really listens (no in-process mock).
            with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=5) as answer:
                assert answer.status == 200
            yield endpoint
        finally:
            server.stop()


@dataclass
class S3:
    endpoint: str
    bucket: str
    client: Any  # a plain boto3 client, to look at (and tamper with) the bucket directly
    store: S3BlobStore

    def versions(self, key: str) -> tuple[list[str], list[str]]:
        page = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
        return (
            [v["VersionId"] for v in page.get("Versions", [])],
            [m["VersionId"] for m in page.get("DeleteMarkers", [])],
        )

    def lock(self, key: str) -> tuple[str | None, dt.datetime | None]:
        head = self.client.head_object(Bucket=self.bucket, Key=key)
        return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")


def _client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION)


def _bucket_name() -> str:
    return f"vetline-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3(settings: Any, s3_endpoint: str) -> S3:
    """A fresh bucket with Object Lock enabled, configured as the archive's blob store."""
    client = _client(s3_endpoint)
    bucket = _bucket_name()
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    settings.VETLINE_BLOB_BACKEND = "s3"
    settings.VETLINE_S3_BUCKET = bucket
    settings.VETLINE_S3_ENDPOINT_URL = s3_endpoint
    settings.VETLINE_S3_REGION = REGION
    store = default_store()
    assert isinstance(store, S3BlobStore)
    return S3(endpoint=s3_endpoint, bucket=bucket, client=client, store=store)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def wait_until(moment: dt.datetime) -> None:
    """Sleep until ``moment`` has passed on this machine's clock (moto's clock too)."""
    while now() <= moment + dt.timedelta(milliseconds=200):
        time.sleep(0.1)


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


# --------------------------------------------------------------------------- writing and reading


def test_put_and_get_round_trip_under_the_content_address(s3: S3) -> None:
    data = b"\x89PNG\r\n\x1a\n an attachment \x00\xff"
    name = s3.store.put(data)

    assert name == hashlib.sha256(data).hexdigest()
    listed = s3.client.list_objects_v2(Bucket=s3.bucket)["Contents"]
    assert [o["Key"] for o in listed] == [name]
    head = s3.client.head_object(Bucket=s3.bucket, Key=name, ChecksumMode="ENABLED")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert s3.client.get_object(Bucket=s3.bucket, Key=name)["Body"].read() == data
    assert s3.store.get(name) == data
    assert s3.store.exists(name)

    absent = hashlib.sha256(b"never stored").hexdigest()
    assert not s3.store.exists(absent)
    with pytest.raises(BlobError, match="is missing"):
        s3.store.get(absent)
    with pytest.raises(BlobError, match="not a lowercase SHA-256"):
        s3.store.get(name.upper())


def test_re_putting_a_blob_is_idempotent_and_never_shortens_its_retention(s3: S3) -> None:
    data = b"the same attachment, sent twice"
    seven_years = now() + dt.timedelta(days=7 * 365)
    name = s3.store.put(data, retain_until=seven_years)
    (first,), _ = s3.versions(name)
    assert s3.lock(name) == ("COMPLIANCE", lock_date(seven_years))

    # shorter retentions asked for later: no error, nothing rewritten, the date stays
    assert s3.store.put(data, retain_until=now() + dt.timedelta(days=3 * 365)) == name
    assert s3.store.put(data) == name  # the default, the longest class: 6 years
    assert s3.versions(name) == ([first], [])
    assert s3.lock(name) == ("COMPLIANCE", lock_date(seven_years))

    # a longer one extends the lock of the existing version in place
    eight_years = now() + dt.timedelta(days=8 * 365)
    assert s3.store.put(data, retain_until=eight_years) == name
    assert s3.versions(name) == ([first], [])
    assert s3.lock(name) == ("COMPLIANCE", lock_date(eight_years))
    assert s3.store.retention(name) == ("COMPLIANCE", lock_date(eight_years))
    assert s3.store.get(name) == data


def test_corrupted_content_is_refused_on_read_and_a_re_put_restores_it(s3: S3) -> None:
    data = b"original attachment bytes"
    name = s3.store.put(data)
    # Object Lock protects each version, but anyone allowed to write can add a newer version
    # under the same key: simulate a damaged or substituted object.
    s3.client.put_object(Bucket=s3.bucket, Key=name, Body=b"substituted bytes")

    with pytest.raises(BlobError, match="is damaged"):
        s3.store.get(name)

    assert s3.store.put(data) == name  # the bytes under the name are wrong: a new version
    assert len(s3.versions(name)[0]) == 3
    assert s3.store.get(name) == data
    assert s3.lock(name)[0] == "COMPLIANCE"


# --------------------------------------------------------------------------- retention dates


def test_retention_date_comes_from_the_record_class(s3: S3) -> None:
    captured = now() - dt.timedelta(hours=5)
    three_years = retain_until_for(captured_at=captured, record_class="business_communication")
    six_years = retain_until_for(captured_at=captured, record_class="books_and_records")
    assert three_years == expires_at(captured, 1095)
    assert six_years == expires_at(captured, 2190)
    # an unknown class gets the longest configured period
    assert retain_until_for(captured_at=captured, record_class="no_such_class") == six_years

    name = s3.store.put(b"a business communication's attachment", retain_until=three_years)
    assert s3.lock(name) == ("COMPLIANCE", lock_date(three_years))
    (version,), _ = s3.versions(name)
    with pytest.raises(ClientError) as refused:  # the lock is the store's, not only ours
        s3.client.delete_object(Bucket=s3.bucket, Key=name, VersionId=version)
    assert _code(refused) == "AccessDenied"

    # a class lengthened by the firm lengthens what new blobs are locked for
    RecordClass.objects.filter(code="business_communication").update(retention_days=1500)
    longer = retain_until_for(captured_at=captured, record_class="business_communication")
    assert longer == expires_at(captured, 1500)
    s3.store.put(b"a business communication's attachment", retain_until=longer)
    assert s3.lock(name) == ("COMPLIANCE", lock_date(longer))


def test_without_a_date_a_blob_is_locked_for_the_longest_configured_class(s3: S3) -> None:
    RecordClass.objects.filter(code="profile").update(retention_days=3650)
    before = now()
    name = s3.store.put(b"an attachment whose record class is not known yet")
    after = now()
    _, until = s3.lock(name)
    assert until is not None
    assert lock_date(expires_at(before, 3650)) <= until <= lock_date(expires_at(after, 3650))


def test_a_retention_already_over_stores_the_blob_unlocked(s3: S3) -> None:
    name = s3.store.put(b"backfilled", retain_until=now() - dt.timedelta(days=1))
    assert s3.lock(name) == (None, None)
    assert s3.store.get(name) == b"backfilled"


# --------------------------------------------------------------------------- deletion


def test_a_locked_blob_is_not_deleted_and_the_refusal_is_reported(s3: S3) -> None:
    name = s3.store.put(b"kept for six years")
    (version,), _ = s3.versions(name)
    _, until = s3.lock(name)

    # retention not passed: not even attempted; the blob is hidden behind a delete marker
    result = s3.store.delete(name, now=now())
    assert result.outcome == DeletionOutcome.RETAINED and not result.removed
    assert result.retained_until == until
    assert "locked (COMPLIANCE)" in result.detail
    versions, markers = s3.versions(name)
    assert versions == [version] and len(markers) == 1
    assert not s3.store.exists(name)

    # our clock says it has passed, the store's does not: S3 refuses (AccessDenied)
    result = s3.store.delete(name, now=now() + dt.timedelta(days=7 * 365))
    assert result.outcome == DeletionOutcome.REFUSED
    assert "AccessDenied" in result.detail and result.retained_until == until
    assert s3.versions(name) == (versions, markers)
    assert s3.client.get_object(Bucket=s3.bucket, Key=name, VersionId=version)["Body"].read()


def test_a_blob_is_deleted_once_its_retention_has_passed(s3: S3) -> None:
    until = lock_date(now() + dt.timedelta(seconds=1))
    name = s3.store.put(b"short-lived", retain_until=until)
    assert s3.store.delete(name, now=now()).outcome == DeletionOutcome.RETAINED

    wait_until(until)
    result = s3.store.delete(name, now=now())

    assert result.outcome == DeletionOutcome.DELETED and result.removed
    assert s3.versions(name) == ([], [])  # every version and the delete marker are gone
    assert s3.store.delete(name, now=now()).outcome == DeletionOutcome.MISSING


# --------------------------------------------------------------------------- legal holds


def test_a_blob_under_legal_hold_is_refused_deletion_whatever_its_retention(s3: S3) -> None:
    name = s3.store.put(b"held", retain_until=now() - dt.timedelta(days=1))  # stored unlocked
    assert s3.store.get_object_legal_hold(name) is False  # never set

    change = s3.store.set_legal_hold(name, True)

    assert change.ok and change.outcome == LegalHoldOutcome.APPLIED
    assert s3.store.get_object_legal_hold(name) is True
    assert s3.store.set_legal_hold(name, True).ok  # idempotent
    (version,), _ = s3.versions(name)
    deletion = s3.store.delete(name, now=now() + dt.timedelta(days=10 * 365))
    assert deletion.outcome == DeletionOutcome.REFUSED
    assert f"version {version} is under an S3 legal hold" in deletion.detail
    versions, markers = s3.versions(name)  # kept, hidden behind a delete marker
    assert versions == [version] and len(markers) == 1
    assert s3.store.get_object_legal_hold(name, version) is True
    # and the bucket itself refuses: S3 enforces the hold, not only Vetline
    with pytest.raises(ClientError) as denied:
        s3.client.delete_object(Bucket=s3.bucket, Key=name, VersionId=version)
    assert _code(denied) == "AccessDenied"

    assert s3.store.set_legal_hold(name, False).ok
    assert s3.store.get_object_legal_hold(name, version) is False
    assert s3.store.delete(name, now=now()).outcome == DeletionOutcome.DELETED
    assert s3.versions(name) == ([], [])


def test_legal_hold_of_a_missing_blob_is_reported_not_raised(s3: S3) -> None:
    change = s3.store.set_legal_hold("a" * 64, True)
    assert change.outcome == LegalHoldOutcome.MISSING and not change.ok
    with pytest.raises(BlobError, match="missing"):
        s3.store.get_object_legal_hold("a" * 64)


def test_legal_hold_in_a_bucket_without_object_lock_is_refused(s3: S3) -> None:
    bucket = _bucket_name()
    s3.client.create_bucket(Bucket=bucket)
    s3.client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    plain = S3BlobStore(client=s3.store.client, bucket=bucket, default_retain_until=lambda _: now())
    name = plain.put(b"no object lock here", retain_until=now() - dt.timedelta(days=1))

    change = plain.set_legal_hold(name, True)

    assert change.outcome == LegalHoldOutcome.REFUSED
    assert "InvalidRequest" in change.detail


def test_local_store_cannot_hold_a_blob(settings: Any) -> None:
    store = default_store()
    assert isinstance(store, LocalBlobStore) and not store.legal_hold_supported
    name = store.put(b"local")
    assert store.set_legal_hold(name, True).outcome == LegalHoldOutcome.UNSUPPORTED


# --------------------------------------------------------------------------- disposal


def _hold(world: Any, **kw: Any) -> Any:
    with use_context(RequestContext(channel="test")):
        return place_legal_hold(
            actor=world.people[Role.COMPLIANCE_OFFICER], matter_name="SEC v. Acme", **kw
        )


def _dispose(at: dt.datetime) -> DisposalReport:
    with use_context(RequestContext(channel="test")):
        return dispose_expired(now=at)


def test_disposal_deletes_expired_blobs_and_reports_those_still_locked(
    s3: S3, ingest: Any, world: Any
) -> None:
    soon = lock_date(now() + dt.timedelta(seconds=1))
    three_years = retain_until_for(captured_at=now(), record_class="business_communication")
    expired = s3.store.put(b"lock over by disposal time", retain_until=soon)
    shared = s3.store.put(b"also on a held record", retain_until=soon)
    locked = s3.store.put(b"lock ends 3 years from now", retain_until=three_years)
    longest = s3.store.put(b"locked for the longest class")  # 6 years, outlives the record
    ingest(
        [
            item("p1", attachments=[expired]),
            item("p2", attachments=[locked]),
            item("p3", attachments=[longest]),
            item("p4", attachments=[shared]),
        ]
    )
    ingest([item("o1", attachments=[shared])], account=world.other)
    hold = _hold(world, accounts=[world.other])
    _, longest_until = s3.lock(longest)
    assert longest_until is not None
    wait_until(soon)
    start = last_audit_id()

    # four years on (by the disposal's clock; S3's clock is the real one)
    at = now() + dt.timedelta(days=4 * 365 + 2)
    report = _dispose(at)

    assert report.disposed == 4 and report.held_skipped == 1
    assert report.blobs_deleted == 1
    kept = {k["sha256"]: k for k in report.blobs_kept}
    assert set(kept) == {locked, longest}
    # its lock has passed by the disposal's clock, so deletion was tried: S3 refused it
    assert kept[locked]["outcome"] == "refused" and "AccessDenied" in kept[locked]["detail"]
    # its lock outlasts even the disposal's clock: not tried
    assert kept[longest]["outcome"] == "retained"
    assert kept[longest]["retained_until"] == longest_until.isoformat()
    assert "1 attachment blob(s) deleted; 2 attachment blob(s) kept" in report.summary()

    run = DisposalRun.objects.get(pk=report.run_id)
    assert run.status == "done"
    event = AuditEvent.objects.get(id__gt=start, action="archive.disposal.run")
    assert event.after["blobs_deleted"] == 1
    assert {k["sha256"]: k["outcome"] for k in event.after["blobs_kept"]} == {
        locked: "refused",
        longest: "retained",
    }

    assert s3.versions(expired) == ([], [])
    for name in (locked, longest):  # still stored and locked, hidden behind a delete marker
        versions, markers = s3.versions(name)
        assert len(versions) == 1 and len(markers) == 1
    assert s3.store.get(shared) == b"also on a held record"  # the held record still needs it
    assert verify_database().ok

    # once the hold is released, the last record referring to the shared blob goes, and so
    # does the blob
    with use_context(RequestContext(channel="test")):
        release_legal_hold(
            actor=world.people[Role.COMPLIANCE_OFFICER], hold=hold, reason="matter closed"
        )
    report = _dispose(at)
    assert report.disposed == 1 and report.blobs_deleted == 1 and report.blobs_kept == []
    assert s3.versions(shared) == ([], [])
    assert not ArchivedRecord.objects.exclude(attachments=[]).exists()


def test_disposal_reports_a_blob_store_it_cannot_use_and_still_finishes(
    s3: S3, settings: Any, ingest: Any
) -> None:
    name = s3.store.put(b"attachment")
    ingest([item("p1", attachments=[name])])
    settings.VETLINE_S3_BUCKET = _bucket_name()  # a bucket that does not exist

    report = _dispose(now() + dt.timedelta(days=4 * 365 + 2))

    assert report.disposed == 1 and report.blobs_deleted == 0
    (kept,) = report.blobs_kept
    assert kept["sha256"] == name and kept["outcome"] == "failed"
    assert DisposalRun.objects.get(pk=report.run_id).status == "done"


def test_local_backend_disposal_deletes_the_blob_file(settings: Any, ingest: Any) -> None:
    store = default_store()
    assert isinstance(store, LocalBlobStore)
    name = store.put(b"a local attachment")
    ingest([item("p1", attachments=[name])])

    report = _dispose(now() + dt.timedelta(days=4 * 365 + 2))

    assert report.blobs_deleted == 1 and report.blobs_kept == []
    assert not store.exists(name)


# --------------------------------------------------------------------------- system check


def _archive_errors() -> list[tuple[str, str]]:
    return [(m.id or "", m.msg) for m in run_checks() if (m.id or "").startswith("archive.")]


def test_system_check_accepts_an_object_lock_bucket(s3: S3) -> None:
    assert _archive_errors() == []


def test_system_check_fails_for_a_bucket_without_object_lock(s3: S3, settings: Any) -> None:
    plain = _bucket_name()
    s3.client.create_bucket(Bucket=plain)
    settings.VETLINE_S3_BUCKET = plain

    ((code, message),) = _archive_errors()

    assert code == "archive.E004"
    assert f"s3://{plain}" in message and "does not have Object Lock enabled" in message
    with pytest.raises(SystemCheckError, match=r"archive\.E004"):
        call_command("check")


def test_system_check_fails_for_a_missing_bucket(s3: S3, settings: Any) -> None:
    missing = _bucket_name()
    settings.VETLINE_S3_BUCKET = missing
    assert _archive_errors() == [
        ("archive.E003", f"The blob bucket s3://{missing} at {s3.endpoint} does not exist.")
    ]


def test_system_check_fails_for_a_bad_configuration(settings: Any) -> None:
    settings.VETLINE_BLOB_BACKEND = "local"
    assert _archive_errors() == []
    settings.VETLINE_BLOB_BACKEND = "gcs"
    assert [c for c, _ in _archive_errors()] == ["archive.E001"]
    settings.VETLINE_BLOB_BACKEND = "s3"
    settings.VETLINE_S3_BUCKET = ""
    assert [c for c, _ in _archive_errors()] == ["archive.E002"]
    settings.VETLINE_BLOB_BACKEND = "gcs"
    with pytest.raises(BlobError, match="gcs"):
        default_store()
