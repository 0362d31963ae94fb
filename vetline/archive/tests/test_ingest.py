"""The ingest path: idempotency, versions, quarantine, bad input, screening, audit."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from vetline.archive.models import (
    ArchivedRecord,
    LogLeaf,
    QuarantinedItem,
    QuarantineStatus,
    ScreeningVerdict,
)
from vetline.archive.tests.conftest import item
from vetline.archive.verification import verify_database
from vetline.conftest import audit_actions_since, last_audit_id

pytestmark = pytest.mark.django_db


def test_batch_is_archived_logged_and_audited(ingest: Any) -> None:
    from vetline.audit.models import AuditEvent

    start = last_audit_id()
    report = ingest([item("1"), item("2", direction="inbound", kind="comment")])
    assert (report.received, report.ingested, report.duplicates, report.quarantined) == (2, 2, 0, 0)
    assert [i.status for i in report.items] == ["ingested", "ingested"]
    assert audit_actions_since(start) == ["archive.ingest.batch"]
    event = AuditEvent.objects.get(action="archive.ingest.batch")
    assert event.after["ingested"] == 2 and event.after["source"] == "test"
    inbound = ArchivedRecord.objects.get(remote_id="2")
    assert inbound.adopted is False  # third-party content is non-adopted by default
    assert ArchivedRecord.objects.get(remote_id="1").adopted is True
    # every record and every audit event (including the batch's own) is a leaf
    assert LogLeaf.objects.count() == 2 + AuditEvent.objects.count()
    assert report.log_size == LogLeaf.objects.count()
    assert verify_database().ok


def test_reingesting_identical_items_is_a_noop(ingest: Any) -> None:
    ingest([item("1"), item("2")])
    leaves = LogLeaf.objects.filter(kind=1).count()
    report = ingest([item("1"), item("2")])
    assert (report.ingested, report.duplicates) == (0, 2)
    assert [i.record_id for i in report.items] == list(
        ArchivedRecord.objects.order_by("id").values_list("id", flat=True)
    )
    assert ArchivedRecord.objects.count() == 2
    assert LogLeaf.objects.filter(kind=1).count() == leaves


def test_duplicates_within_one_batch(ingest: Any) -> None:
    report = ingest([item("1"), item("1")])
    assert [i.status for i in report.items] == ["ingested", "duplicate"]
    assert report.items[1].record_id == report.items[0].record_id
    assert ArchivedRecord.objects.count() == 1


def test_same_key_different_content_is_quarantined_as_conflict(ingest: Any) -> None:
    ingest([item("1", text="original")])
    report = ingest([item("1", text="tampered"), item("2")])
    assert (report.ingested, report.conflicts, report.quarantined) == (1, 1, 1)
    original = ArchivedRecord.objects.get(remote_id="1")
    assert original.text == "original"  # never overwritten
    q = QuarantinedItem.objects.get()
    assert q.reason_code == "conflict" and q.conflicting_record_id == original.pk
    assert json.loads(bytes(q.raw))["text"] == "tampered"


def test_edits_and_deletions_are_new_versions_linked_to_the_previous(ingest: Any) -> None:
    ingest([item("p1", text="v1 text")])
    ingest([item("p1", kind="edit", text="v2 text")])
    report = ingest([item("p1", kind="deletion", text="")])
    assert report.items[0].version == 3
    v1, v2, v3 = ArchivedRecord.objects.filter(remote_id="p1").order_by("version")
    assert (v1.version, v2.version, v3.version) == (1, 2, 3)
    assert v1.text == "v1 text" and v1.previous_version_id is None
    assert v2.previous_version_id == v1.log_index and v2.previous_version == v1
    assert v3.previous_version_id == v2.log_index and v3.kind == "deletion"
    # the same edit sent again is recognised
    again = ingest([item("p1", kind="edit", text="v2 text")])
    assert again.items[0].status == "duplicate" and again.items[0].record_id == v2.pk
    # edit and original in one batch
    r = ingest([item("p2", text="a"), item("p2", kind="edit", text="b")])
    assert [i.version for i in r.items] == [1, 2]
    assert ArchivedRecord.objects.get(remote_id="p2", version=2).previous_version_id == (
        ArchivedRecord.objects.get(remote_id="p2", version=1).log_index
    )
    assert verify_database().ok


def test_explicit_versions(ingest: Any) -> None:
    report = ingest([item("x", version=1), item("x", version=2, kind="edit", text="new")])
    assert [i.version for i in report.items] == [1, 2]
    assert ingest([item("x", version=2, kind="edit", text="new")]).duplicates == 1
    assert ingest([item("x", version=2, kind="edit", text="other")]).conflicts == 1


BAD_ITEMS: list[tuple[Any, str]] = [
    ({"kind": "post", "direction": "outbound", "text": "no id"}, "missing_field"),
    ({"remote_id": "b", "direction": "outbound"}, "missing_field"),
    (item("b", text=42), "wrong_type"),
    (item("b", participants="alice"), "wrong_type"),
    (item("b", version="2"), "wrong_type"),
    (item("b", adopted="yes"), "wrong_type"),
    (item("b", kind="tweet"), "invalid_value"),
    (item("b", network_timestamp="yesterday"), "invalid_timestamp"),
    (item("b", network_timestamp="2025-01-01T10:00:00"), "invalid_timestamp"),
    (item("b", attachments=["not-a-hash"]), "invalid_value"),
    (item("b", text="x" * 1_000_001), "oversized"),
    (item("b", text="é" * 500_001), "oversized"),  # 1,000,002 bytes in UTF-8
    (item("b", raw_payload_b64=base64.b64encode(b"x" * 10_000_001).decode()), "oversized"),
    (item("b", text="nul\x00byte"), "nul_character"),
    (item("b", text="lone \ud800 surrogate"), "invalid_unicode"),
    (item("b", colour="red"), "unknown_field"),
    (
        b'{"remote_id": "b", "kind": "post", "direction": "outbound", "text": "caf\xe9"}',
        "invalid_utf8",
    ),
    (b"{not json", "invalid_json"),
    (b"[1, 2]", "wrong_type"),
]


@pytest.mark.parametrize(("bad", "code"), BAD_ITEMS, ids=[c for _, c in BAD_ITEMS])
def test_bad_items_are_quarantined_with_a_reason_and_good_ones_still_go_in(
    ingest: Any, bad: Any, code: str
) -> None:
    report = ingest([item("good-1"), bad, item("good-2")])
    assert [i.status for i in report.items] == ["ingested", "quarantined", "ingested"]
    assert report.items[1].reason_code == code, report.items[1].reason
    q = QuarantinedItem.objects.get()
    assert q.reason_code == code and q.reason and q.position == 1
    assert q.status == QuarantineStatus.QUARANTINED
    if isinstance(bad, bytes):
        assert bytes(q.raw) == bad  # kept byte for byte
    assert ArchivedRecord.objects.count() == 2


def test_reprocess_quarantined(ingest: Any, world: Any) -> None:
    from vetline.archive.actions import reprocess_quarantined
    from vetline.core.errors import Forbidden
    from vetline.identity.roles import Role

    ingest([item("a", text="first")])
    ingest([item("a", text="second"), b"\xff\xfe"])
    conflict, broken = QuarantinedItem.objects.order_by("position")

    admin = world.people[Role.ADMINISTRATOR]
    with pytest.raises(Forbidden):
        reprocess_quarantined(item_ids=[broken.pk], actor=world.people[Role.AUDITOR])
    # still bad: stays quarantined (one row), attempts counted
    report = reprocess_quarantined(item_ids=[broken.pk, conflict.pk], actor=admin)
    assert report.quarantined == 2
    assert QuarantinedItem.objects.count() == 2
    broken.refresh_from_db()
    assert broken.attempts == 2 and broken.reason_code == "invalid_utf8"
    # an item that is valid under today's rules (say, after a validator fix) is released
    fixed = QuarantinedItem.objects.create(
        account=world.corporate,
        source="t",
        reason_code="x",
        reason="x",
        raw=json.dumps(item("later")).encode(),
    )
    report = reprocess_quarantined(item_ids=[fixed.pk], actor=admin)
    fixed.refresh_from_db()
    assert report.ingested == 1 and fixed.status == QuarantineStatus.RELEASED
    assert fixed.resolved_record.remote_id == "later"


def test_screening_verdicts_are_stored_apart_from_records(ingest: Any, world: Any) -> None:
    from vetline.identity.roles import Role
    from vetline.policy.actions import create_policy

    create_policy(
        actor=world.people[Role.COMPLIANCE_OFFICER],
        spec_yaml=(
            "name: arch\nrules:\n  - id: guarantee\n    kind: lexicon\n    severity: block\n"
            "    explanation: promissory\n    terms: [guaranteed returns]\n"
        ),
    )
    report = ingest(
        [
            item("s1", text="Guaranteed returns for everyone!"),
            item("s2", text="hello", kind="direct_message", direction="inbound"),
        ]
    )
    v1 = ScreeningVerdict.objects.get(record_id=report.items[0].record_id)
    assert v1.verdict == "block" and v1.scope == "outbound_post"
    assert v1.hits[0]["rule_id"] == "guarantee" and v1.policy_name == "arch"
    v2 = ScreeningVerdict.objects.get(record_id=report.items[1].record_id)
    assert v2.verdict == "pass" and v2.scope == "direct_message"
    assert ingest([item("s3")], screen=False).ingested == 1
    assert ScreeningVerdict.objects.count() == 2


def test_attachments_reference_blobs(ingest: Any) -> None:
    from vetline.archive.blobs import default_store

    digest = default_store().put(b"\x89PNG fake image")
    report = ingest([item("att", attachments=[digest])])
    assert ArchivedRecord.objects.get(pk=report.items[0].record_id).attachments == [digest]


def test_an_item_naming_a_blob_that_is_not_stored_is_quarantined_until_it_is(
    ingest: Any, world: Any
) -> None:
    import hashlib

    from vetline.archive.actions import reprocess_quarantined
    from vetline.archive.blobs import default_store

    stored = default_store().put(b"stored image bytes")
    absent = hashlib.sha256(b"bytes nobody uploaded").hexdigest()
    report = ingest(
        [
            item("ok", attachments=[stored]),
            item("lost", attachments=[stored, absent]),
            item("plain"),
        ]
    )
    assert [r.status for r in report.items] == ["ingested", "quarantined", "ingested"]
    assert report.items[1].reason_code == "missing_attachment"
    assert absent in report.items[1].reason and "POST /api/archive/blobs" in report.items[1].reason
    assert not ArchivedRecord.objects.filter(remote_id="lost").exists()
    # once the bytes are stored, reprocessing archives it
    assert default_store().put(b"bytes nobody uploaded") == absent
    from vetline.identity.roles import Role

    admin = world.people[Role.ADMINISTRATOR]
    again = reprocess_quarantined(item_ids=[report.items[1].quarantine_id], actor=admin)
    assert again.ingested == 1
    assert ArchivedRecord.objects.get(remote_id="lost").attachments == [stored, absent]


def test_raw_payload_is_kept_verbatim(ingest: Any) -> None:
    raw = b'{"id":"1","weird":  "spacing"}'
    ingest([item("r1", raw_payload_b64=base64.b64encode(raw).decode()), item("r2", raw={"a": 1})])
    r1 = ArchivedRecord.objects.get(remote_id="r1")
    assert bytes(r1.raw_payload) == raw
    import hashlib

    assert r1.raw_payload_sha256 == hashlib.sha256(raw).hexdigest()
    assert bytes(ArchivedRecord.objects.get(remote_id="r2").raw_payload) == b'{"a":1}'
    line = json.dumps(item("r3")).encode()
    ingest([line])
    assert bytes(ArchivedRecord.objects.get(remote_id="r3").raw_payload) == line


def test_pending_audit_events_are_appended_in_id_order(ingest: Any, world: Any) -> None:
    from django.db import transaction

    from vetline.archive.actions import append_pending_audit_events
    from vetline.audit.actions import record
    from vetline.audit.models import AuditEvent

    append_pending_audit_events()
    with transaction.atomic():
        e1 = record(action="test.one", actor=None)
        e2 = record(action="test.two", actor=None)
    assert append_pending_audit_events() == 2
    assert append_pending_audit_events() == 0
    ids = list(LogLeaf.objects.filter(kind=2).order_by("index").values_list("object_id", flat=True))
    assert ids[-2:] == [e1.pk, e2.pk]
    assert set(ids) == set(AuditEvent.objects.values_list("id", flat=True))
