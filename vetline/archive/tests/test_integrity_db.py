"""The integrity log in the database: append-only, proofs, signed heads, and fault injection
(every kind of tampering is detected by verify and reported precisely)."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from vetline.archive import log
from vetline.archive.actions import run_verification, sign_tree_head
from vetline.archive.integrity.merkle import MerkleTree, leaf_hash, verify_inclusion
from vetline.archive.integrity.sth import LogSigner
from vetline.archive.models import (
    AppendOnlyError,
    ArchivedRecord,
    LogLeaf,
    TreeHead,
    VerificationRun,
)
from vetline.archive.tests.conftest import item
from vetline.archive.verification import verify_database

pytestmark = pytest.mark.django_db
TRIGGERS = importlib.import_module("vetline.archive.migrations.0002_append_only_triggers")


@contextlib.contextmanager
def triggers_dropped(table: str) -> Iterator[None]:
    """Drop the append-only triggers of one table inside the test's transaction (rolled back
    with it), as an attacker with the database's owner role could."""
    vendor = connection.vendor
    down = TRIGGERS.SQLITE_DOWN if vendor == "sqlite" else TRIGGERS.POSTGRES_DOWN
    up = TRIGGERS.SQLITE_UP if vendor == "sqlite" else TRIGGERS.POSTGRES_UP
    with connection.cursor() as cur:
        for sql in down:
            if table in sql:
                cur.execute(sql)
    yield
    with connection.cursor() as cur:
        for sql in up:
            if f"ON {table}" in sql:
                cur.execute(sql)


def _sql(statement: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cur:
        cur.execute(statement, params or [])


@pytest.fixture
def archived(ingest: Any) -> list[ArchivedRecord]:
    ingest([item(f"r{i}", text=f"message {i}") for i in range(12)])
    ingest([item("r3", kind="edit", text="message 3, edited")])
    sign_tree_head()
    return list(ArchivedRecord.objects.order_by("log_index"))


def kinds(result: Any) -> set[str]:
    return set(result.counts)


def test_clean_log_verifies_and_runs_are_recorded(archived: Any) -> None:
    result = verify_database()
    assert result.ok, result.lines()
    assert result.report.heads_verified >= 1
    run, _ = run_verification(trigger="test")
    assert run.ok and VerificationRun.objects.count() == 1


def test_models_refuse_updates_and_deletes(archived: Any) -> None:
    record = archived[0]
    record.text = "changed"
    with pytest.raises(AppendOnlyError):
        record.save()
    with pytest.raises(AppendOnlyError):
        record.delete()
    with pytest.raises(AppendOnlyError):
        ArchivedRecord.objects.filter(pk=record.pk).update(text="x")
    with pytest.raises(AppendOnlyError):
        LogLeaf.objects.all().delete()


@pytest.mark.parametrize(
    ("table", "statement"),
    [
        ("archive_archivedrecord", "UPDATE archive_archivedrecord SET text = 'x'"),
        ("archive_archivedrecord", "DELETE FROM archive_archivedrecord"),
        ("archive_logleaf", "UPDATE archive_logleaf SET kind = 3"),
        ("archive_logleaf", "DELETE FROM archive_logleaf"),
        ("archive_lognode", "DELETE FROM archive_lognode"),
        ("archive_treehead", "UPDATE archive_treehead SET tree_size = 1"),
    ],
)
def test_database_triggers_refuse_raw_sql(archived: Any, table: str, statement: str) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _sql(statement)


def _one(result: Any, kind: str) -> dict[str, Any]:
    found = [f for f in result.findings if f["kind"] == kind]
    assert found, result.lines()
    return found[0]


def test_flipped_byte_in_text_is_reported_at_its_record(archived: Any) -> None:
    target = archived[5]
    with triggers_dropped("archive_archivedrecord"):
        _sql(
            "UPDATE archive_archivedrecord SET text = %s WHERE id = %s",
            ["message 5".replace("5", "6"), target.pk],
        )
    result = verify_database()
    assert not result.ok
    finding = _one(result, "record_modified")
    assert finding["index"] == target.log_index
    assert f"record #{target.pk}" in finding["object"] and "remote id r5" in finding["object"]
    assert "content was altered" in finding["detail"]
    assert kinds(result) == {"record_modified"}


def test_flipped_byte_in_raw_payload(archived: Any) -> None:
    target = archived[2]
    payload = bytearray(bytes(target.raw_payload))
    payload[3] ^= 0x01
    with triggers_dropped("archive_archivedrecord"):
        _sql(
            "UPDATE archive_archivedrecord SET raw_payload = %s WHERE id = %s",
            [bytes(payload), target.pk],
        )
    finding = _one(verify_database(), "record_modified")
    assert finding["index"] == target.log_index
    assert "raw payload bytes were altered" in finding["detail"]


def test_altered_timestamp(archived: Any) -> None:
    target = archived[7]
    with triggers_dropped("archive_archivedrecord"):
        ArchivedRecord.objects.filter(pk=target.pk)  # the ORM refuses; raw SQL does not
        _sql(
            "UPDATE archive_archivedrecord SET captured_at = %s WHERE id = %s",
            [
                "2020-01-01 00:00:00"
                if connection.vendor == "sqlite"
                else "2020-01-01T00:00:00+00:00",
                target.pk,
            ],
        )
    result = verify_database()
    finding = _one(result, "record_modified")
    assert finding["index"] == target.log_index
    assert "capture metadata was altered" in finding["detail"]
    # network timestamp is content
    with triggers_dropped("archive_archivedrecord"):
        _sql(
            "UPDATE archive_archivedrecord SET network_timestamp = captured_at WHERE id = %s",
            [archived[8].pk],
        )
    modified = {f["index"] for f in verify_database().findings if f["kind"] == "record_modified"}
    assert modified == {target.log_index, archived[8].log_index}


def test_deleted_record_row(archived: Any) -> None:
    target = archived[4]
    with triggers_dropped("archive_archivedrecord"):
        _sql("DELETE FROM archive_archivedrecord WHERE id = %s", [target.pk])
    result = verify_database()
    finding = _one(result, "content_missing")
    assert finding["index"] == target.log_index
    assert f"record #{target.pk}" in finding["object"]
    assert kinds(result) == {"content_missing"}  # the tree still recomputes from the hashes


def test_deleted_leaf_row(archived: Any) -> None:
    target = archived[4]
    with triggers_dropped("archive_logleaf"):
        _sql(
            "DELETE FROM archive_logleaf WHERE " + connection.ops.quote_name("index") + " = %s",
            [target.log_index],
        )
    result = verify_database()
    assert _one(result, "record_missing")["index"] == target.log_index


def test_swapped_rows_are_reported_as_moved(archived: Any) -> None:
    a, b = archived[1], archived[9]
    cols = ["text", "raw_payload", "raw_payload_sha256", "content_sha256"]
    with triggers_dropped("archive_archivedrecord"):
        for row, other in ((a, b), (b, a)):
            sets = ", ".join(f"{c} = %s" for c in cols)
            _sql(
                f"UPDATE archive_archivedrecord SET {sets}, remote_id = %s WHERE id = %s",
                [
                    getattr(other, c) if c != "raw_payload" else bytes(other.raw_payload)
                    for c in cols
                ]
                + [f"tmp-{other.remote_id}", row.pk],
            )
        _sql(
            "UPDATE archive_archivedrecord SET remote_id = substr(remote_id, 5) "
            "WHERE remote_id LIKE 'tmp-%%'"
        )
    result = verify_database()
    moved = [f for f in result.findings if f["kind"] == "record_moved"]
    assert {f["index"] for f in moved} == {a.log_index, b.log_index}, result.lines()
    assert "logged at index" in moved[0]["detail"]


def test_swapped_leaf_rows_fail_the_signed_root(archived: Any) -> None:
    a, b = archived[1], archived[9]
    leaf_a = LogLeaf.objects.get(index=a.log_index)
    leaf_b = LogLeaf.objects.get(index=b.log_index)
    with triggers_dropped("archive_logleaf"), triggers_dropped("archive_archivedrecord"):
        q = connection.ops.quote_name("index")
        _sql(
            f"UPDATE archive_logleaf SET leaf_hash = %s, object_id = %s WHERE {q} = %s",
            [bytes(leaf_b.leaf_hash), leaf_b.object_id, a.log_index],
        )
        _sql(
            f"UPDATE archive_logleaf SET leaf_hash = %s, object_id = %s WHERE {q} = %s",
            [bytes(leaf_a.leaf_hash), leaf_a.object_id, b.log_index],
        )
    result = verify_database()
    assert "head_root_mismatch" in result.counts, result.lines()


def test_truncated_log(archived: Any) -> None:
    size = log.current_size()
    q = connection.ops.quote_name("index")
    with triggers_dropped("archive_logleaf"):
        _sql(f"DELETE FROM archive_logleaf WHERE {q} >= %s", [size - 3])
    result = verify_database()
    assert "log_truncated" in result.counts, result.lines()
    finding = _one(result, "log_truncated")
    assert str(size - 3) in finding["detail"]


def test_forged_tree_heads(archived: Any) -> None:
    size, root = log.current_root()
    forger = LogSigner.generate()
    head = forger.sign_tree_head(tree_size=size, root_hash=root)
    TreeHead.objects.create(
        tree_size=head.tree_size,
        root_hash=head.root_hash,
        timestamp_ms=head.timestamp_ms,
        key_id=head.key_id,
        signature=head.signature,
    )
    result = verify_database()
    assert kinds(result) == {"head_unknown_key"}
    # a head claiming our key with a bad signature
    real = TreeHead.objects.order_by("id").first()
    assert real is not None
    TreeHead.objects.create(
        tree_size=real.tree_size,
        root_hash=b"\x11" * 32,
        timestamp_ms=real.timestamp_ms + 1,
        key_id=bytes(real.key_id),
        signature=bytes(real.signature),
    )
    assert "head_bad_signature" in verify_database().counts
    # a head signed with the real key over a root the log does not produce
    fake = log.signer().sign_tree_head(tree_size=size, root_hash=b"\x22" * 32)
    TreeHead.objects.create(
        tree_size=fake.tree_size,
        root_hash=fake.root_hash,
        timestamp_ms=fake.timestamp_ms,
        key_id=fake.key_id,
        signature=fake.signature,
    )
    counts = verify_database().counts
    assert "head_root_mismatch" in counts or "head_inconsistent" in counts


def test_witness_copy_exposes_deleted_heads_and_rollback(archived: Any, ingest: Any) -> None:
    from vetline.archive.verification import witness_heads

    ingest([item("late")])
    sign_tree_head()
    assert len(witness_heads()) == 0  # written on commit; the test transaction never commits
    from vetline.archive.actions import write_witness

    for row in TreeHead.objects.all():
        write_witness(log.head_from_row(row))
    big = log.current_size()
    q = connection.ops.quote_name("index")
    with triggers_dropped("archive_treehead"), triggers_dropped("archive_logleaf"):
        _sql("DELETE FROM archive_treehead")
        _sql(f"DELETE FROM archive_logleaf WHERE {q} >= %s", [big - 1])
    result = verify_database()
    assert result.witness_heads >= 2
    assert "log_truncated" in result.counts, result.lines()


def test_verify_command_prints_a_precise_report(archived: Any, capsys: Any) -> None:
    from django.core.management.base import CommandError

    from vetline.audit.models import AuditEvent

    call_command("archive", "verify")
    assert "OK:" in capsys.readouterr().out
    target = archived[3]
    with triggers_dropped("archive_archivedrecord"):
        _sql("UPDATE archive_archivedrecord SET text = 'forged' WHERE id = %s", [target.pk])
    with pytest.raises(CommandError):
        call_command("archive", "verify")
    out = capsys.readouterr().out
    assert "FAILED: record_modified x1" in out
    assert f"[record_modified] index {target.log_index} archived record #{target.pk}" in out
    assert AuditEvent.objects.filter(action="archive.verify.failed").count() == 1
    assert VerificationRun.objects.filter(ok=False).count() == 1


def test_database_hash_store_matches_the_in_memory_tree(ingest: Any) -> None:
    ingest([item(f"m{i}") for i in range(150)])
    ingest([item(f"n{i}") for i in range(37)])
    hashes = [
        bytes(h) for h in LogLeaf.objects.order_by("index").values_list("leaf_hash", flat=True)
    ]
    tree = MerkleTree()
    for h in hashes:
        tree.append_leaf_hash(h)
    size, root = log.current_root()
    assert size == len(hashes) and root == tree.root()
    for n in (1, 2, 3, 16, 17, 64, 100, size):
        assert log.root_at(n) == tree.root(n)
    for index, n in ((0, 1), (0, size), (5, 16), (63, 64), (100, size), (size - 1, size)):
        proof = log.inclusion_proof(index, n)
        assert proof == tree.inclusion_proof(index, n)
        assert verify_inclusion(hashes[index], index, n, proof, tree.root(n))
    for old, new in ((1, size), (16, 17), (31, 64), (100, size)):
        assert log.consistency_proof(old, new) == tree.consistency_proof(old, new)


def test_record_leaf_matches_the_canonical_module(archived: Any) -> None:
    from vetline.archive.integrity.canonical import parse_leaf, record_leaf_bytes
    from vetline.archive.leaves import record_leaf_from_row

    record = archived[0]
    data = record_leaf_from_row(record)
    parsed = parse_leaf(data)
    assert record_leaf_bytes(parsed.body) == data
    assert leaf_hash(data) == bytes(LogLeaf.objects.get(index=record.log_index).leaf_hash)
