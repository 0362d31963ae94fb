"""Fault injection on the full verification routine: each kind of tampering is named precisely."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

from vetline.archive.integrity.canonical import (
    disposal_leaf_bytes,
    record_leaf_bytes,
    tombstone_bytes,
)
from vetline.archive.integrity.merkle import leaf_hash
from vetline.archive.integrity.sth import Keyring, LogSigner
from vetline.archive.integrity.verify import FindingKind, VerifiedRun, verify_log

from .factories import build_log, record_fields

N = 23


def kinds(report: object) -> set[str]:
    return set(report.counts)  # type: ignore[attr-defined]


def test_intact_log_verifies() -> None:
    log = build_log(N)
    report = verify_log(log.entries(), log.heads, log.keyring)
    assert report.ok, report.render_text()
    assert report.entries_checked == N
    assert report.verified_tree_size == N
    assert report.root == log.tree.root()
    assert report.heads_verified == len(log.heads)
    assert "no tampering found" in report.render_text()


def test_empty_log() -> None:
    report = verify_log([], [], Keyring())
    assert report.ok


def test_flipped_byte_in_record() -> None:
    log = build_log(N)
    entries = log.entries()
    i, data, stored = entries[7]
    flipped = bytearray(data)
    flipped[40] ^= 0x01
    entries[7] = (i, bytes(flipped), stored)
    report = verify_log(entries, log.heads, log.keyring, check_canonical=False)
    assert kinds(report) == {"record_modified"}
    (finding,) = report.findings
    assert finding.index == 7


def test_flipped_byte_in_payload_hash() -> None:
    log = build_log(N)
    entries = log.entries()
    fields = record_fields(3)
    fields["raw_payload_sha256"] = "f" + str(fields["raw_payload_sha256"])[1:]
    entries[3] = (3, record_leaf_bytes(fields), entries[3][2])
    report = verify_log(entries, log.heads, log.keyring)
    assert [(f.kind, f.index) for f in report.findings] == [(FindingKind.RECORD_MODIFIED, 3)]


def test_altered_timestamp_is_reported_as_content_mismatch() -> None:
    log = build_log(N)
    entries = log.entries()
    fields = record_fields(12)
    fields["captured_at"] = fields["captured_at"] + dt.timedelta(hours=-1)  # type: ignore[operator]
    entries[12] = (12, record_leaf_bytes(fields), entries[12][2])
    report = verify_log(entries, log.heads, log.keyring)
    (finding,) = report.findings
    assert finding.kind is FindingKind.RECORD_MODIFIED and finding.index == 12
    assert "timestamp" in finding.detail


def test_deleted_row() -> None:
    log = build_log(N)
    entries = log.entries()
    del entries[9]
    report = verify_log(entries, log.heads, log.keyring)
    missing = report.of_kind(FindingKind.RECORD_MISSING)
    assert [f.index for f in missing] == [9]
    # heads beyond the gap cannot be recomputed; heads before it still check out
    assert kinds(report) == {"record_missing", "head_unverifiable"}
    assert all(
        f.tree_size and f.tree_size > 9 for f in report.of_kind(FindingKind.HEAD_UNVERIFIABLE)
    )


def test_reordered_rows_storage_order() -> None:
    log = build_log(N)
    entries = log.entries()
    entries[4], entries[5] = entries[5], entries[4]
    report = verify_log(entries, log.heads, log.keyring)
    assert [(f.kind, f.index) for f in report.findings] == [(FindingKind.OUT_OF_ORDER, 4)]
    assert report.root == log.tree.root()  # the log itself is still intact


def test_rows_contents_swapped_between_indices() -> None:
    log = build_log(N)
    entries = log.entries()
    (a, da, ha), (b, db, hb) = entries[4], entries[6]
    entries[4], entries[6] = (a, db, ha), (b, da, hb)
    report = verify_log(entries, log.heads, log.keyring)
    moved = report.of_kind(FindingKind.RECORD_MOVED)
    assert sorted(f.index or -1 for f in moved) == [4, 6]
    assert "index 6" in next(f.detail for f in moved if f.index == 4)


def test_duplicate_row() -> None:
    log = build_log(N)
    entries = log.entries()
    entries.insert(3, entries[2])
    report = verify_log(entries, log.heads, log.keyring)
    assert [(f.kind, f.index) for f in report.findings] == [(FindingKind.DUPLICATE_INDEX, 2)]


def test_truncated_log() -> None:
    log = build_log(N)
    entries = log.entries()[:17]
    report = verify_log(entries, log.heads, log.keyring)
    truncated = report.of_kind(FindingKind.LOG_TRUNCATED)
    assert truncated and {f.tree_size for f in truncated} == {20, 23}
    assert kinds(report) == {"log_truncated"}
    assert "17..22" in truncated[-1].detail


def test_forged_head_bad_signature() -> None:
    log = build_log(N)
    forged = dataclasses.replace(log.heads[-1], root_hash=b"\x00" * 32)
    report = verify_log(log.entries(), [*log.heads[:-1], forged], log.keyring)
    assert [(f.kind, f.tree_size) for f in report.findings] == [(FindingKind.HEAD_BAD_SIGNATURE, N)]


def test_forged_head_unknown_key() -> None:
    log = build_log(N)
    impostor = LogSigner.generate()
    fake = impostor.sign_tree_head(tree_size=N, root_hash=b"\x00" * 32, timestamp_ms=5)
    report = verify_log(log.entries(), [*log.heads, fake], log.keyring)
    assert kinds(report) == {"head_unknown_key"}


def test_record_and_leaf_hash_rewritten_together() -> None:
    log = build_log(N)
    entries = log.entries()
    fields = record_fields(13)
    fields["text"] = "rewritten"
    data = record_leaf_bytes(fields)
    entries[13] = (13, data, leaf_hash(data))
    report = verify_log(entries, log.heads, log.keyring)
    mismatched = report.of_kind(FindingKind.HEAD_ROOT_MISMATCH)
    assert {f.tree_size for f in mismatched} == {15, 20, 23}
    assert kinds(report) == {"head_root_mismatch"}
    # narrowed down: heads up to 10 still match, so the change lies in 10..14
    assert "10..14" in mismatched[0].detail


def test_validly_signed_fork_and_rollback() -> None:
    log = build_log(N)
    fork = log.signer.sign_tree_head(tree_size=20, root_hash=b"\x01" * 32, timestamp_ms=10**13)
    report = verify_log(log.entries(), [*log.heads, fork], log.keyring)
    assert "head_inconsistent" in kinds(report)
    assert "head_root_mismatch" in kinds(report)
    assert any("rolled back" in f.detail for f in report.of_kind(FindingKind.HEAD_INCONSISTENT))


def test_consistency_proofs_between_heads() -> None:
    log = build_log(N)
    old, new = log.heads[1], log.heads[-1]
    good = log.tree.consistency_proof(old.tree_size, new.tree_size)
    ok = verify_log(
        log.entries(),
        log.heads,
        log.keyring,
        consistency_proofs={(old.tree_size, new.tree_size): good},
    )
    assert ok.ok
    bad = [bytes(32), *good[1:]]
    report = verify_log(
        log.entries(),
        log.heads,
        log.keyring,
        consistency_proofs={(old.tree_size, new.tree_size): bad},
    )
    assert [(f.kind, f.tree_size) for f in report.findings] == [
        (FindingKind.HEAD_INCONSISTENT, new.tree_size)
    ]


def test_non_canonical_bytes() -> None:
    log = build_log(5)
    signer = log.signer
    data = b'vetline-leaf-v1 record\n{"b":1,"a":2}'
    log.tree.append(data)
    entries = [*log.entries(), (5, data, leaf_hash(data))]
    head = signer.sign_tree_head(tree_size=6, root_hash=log.tree.root(), timestamp_ms=9 * 10**12)
    report = verify_log(entries, [*log.heads, head], log.keyring)
    assert [(f.kind, f.index) for f in report.findings] == [(FindingKind.NON_CANONICAL, 5)]


def test_disposed_record_still_verifies() -> None:
    log = build_log(N)
    original = log.hashes[4]
    disposal = disposal_leaf_bytes(
        disposed_index=4,
        original_leaf_hash=original,
        disposed_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        reason="retention expired",
    )
    log.tree.append(disposal)
    heads = [
        *log.heads,
        log.signer.sign_tree_head(
            tree_size=N + 1, root_hash=log.tree.root(), timestamp_ms=2 * 10**12
        ),
    ]
    entries = [*log.entries(), (N, disposal, leaf_hash(disposal))]
    entries[4] = (4, tombstone_bytes(index=4, original_leaf_hash=original), original)
    report = verify_log(entries, heads, log.keyring)
    assert report.ok, report.render_text()
    assert report.disposed_records == 1
    # content removed without a disposal leaf: flagged
    undocumented = log.entries()
    undocumented[6] = (6, tombstone_bytes(index=6, original_leaf_hash=log.hashes[6]), log.hashes[6])
    report = verify_log(undocumented, log.heads, log.keyring)
    assert [(f.kind, f.index) for f in report.findings] == [(FindingKind.UNDOCUMENTED_DISPOSAL, 6)]


def test_report_is_structured_and_capped() -> None:
    log = build_log(N)
    entries = [(i, data + b" ", h) for i, data, h in log.entries()]
    report = verify_log(
        entries, log.heads, log.keyring, check_canonical=False, max_findings_per_kind=5
    )
    assert report.counts == {"record_modified": N}
    assert len(report.findings) == 5
    as_dict = report.to_dict()
    assert as_dict["ok"] is False and as_dict["findings"][0]["kind"] == "record_modified"
    assert "more findings not listed" in report.render_text()


def _as_runs(entries: list[tuple[int, bytes, bytes]], cuts: list[int]) -> list[object]:
    """The entries as VerifiedRuns cut at ``cuts`` (what a source that checked them sends)."""
    out: list[object] = []
    bounds = [0, *cuts, len(entries)]
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            out.append(VerifiedRun(entries[lo][0], b"".join(e[2] for e in entries[lo:hi])))
    return out


def test_verified_runs_check_as_entries_do() -> None:
    log = build_log(N, head_every=4)
    reference = verify_log(log.entries(), log.heads, log.keyring)
    for cuts in ([], [1], [3, 4, 9], list(range(1, N))):
        report = verify_log(_as_runs(log.entries(), cuts), log.heads, log.keyring)
        assert report.ok, report.render_text()
        assert (report.entries_checked, report.root, report.heads_verified) == (
            reference.entries_checked,
            reference.root,
            reference.heads_verified,
        )
    # runs and entries mixed; a run out of order and a run repeated are still reported
    entries = log.entries()
    runs = _as_runs(entries, [5, 10])
    report = verify_log([runs[0], runs[2], runs[1]], log.heads, log.keyring)
    assert FindingKind.OUT_OF_ORDER.value in report.counts
    report = verify_log([runs[0], runs[0], runs[1], runs[2]], log.heads, log.keyring)
    assert set(report.counts) == {FindingKind.DUPLICATE_INDEX.value}
    report = verify_log([runs[0], *entries[5:10], runs[2]], log.heads, log.keyring)
    assert report.ok and report.root == reference.root
