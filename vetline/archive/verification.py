"""`vetline archive verify`: recompute the whole log from the rows and say precisely what is
wrong, naming the record (or audit event) and the kind of tampering."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from vetline.archive.integrity.merkle import fold_subtrees
from vetline.archive.integrity.sth import SignatureError, SignedTreeHead
from vetline.archive.integrity.verify import (
    Finding,
    FindingKind,
    VerificationReport,
    verify_log,
)
from vetline.archive.leaves import content_sha256, record_content_from_row
from vetline.archive.log import (
    EntrySource,
    describe_index,
    head_from_row,
    keyring,
    leaf_objects,
    split_frontier,
    unlogged_records,
)
from vetline.archive.models import ArchivedRecord, LeafKind, LogState, TreeHead


@dataclass
class DatabaseVerification:
    report: VerificationReport
    findings: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    witness_heads: int = 0

    @property
    def ok(self) -> bool:
        return not self.counts

    def lines(self) -> list[str]:
        r = self.report
        out = [
            f"log entries checked: {r.entries_checked:,} (log size {r.log_size:,}, recomputed "
            f"tree size {r.verified_tree_size:,}, root {r.root.hex()})",
            f"tree heads checked: {r.heads_checked} ({r.heads_verified} with a valid signature, "
            f"{self.witness_heads} from the witness file)",
        ]
        if self.ok:
            out.append("OK: every record, audit event and tree head verifies.")
            return out
        out.append("FAILED: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.counts.items())))
        for f in self.findings:
            where = (
                f"index {f['index']}"
                if f["index"] is not None
                else (f"tree size {f['tree_size']}" if f["tree_size"] is not None else "log")
            )
            obj = f" {f['object']}:" if f.get("object") else ""
            out.append(f"  [{f['kind']}] {where}{obj} {f['detail']}")
        return out


def witness_heads() -> list[SignedTreeHead]:
    path = Path(settings.VETLINE_WITNESS_DIR) / "tree-heads.jsonl"
    heads: list[SignedTreeHead] = []
    if not path.exists():
        return heads
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            heads.append(SignedTreeHead.from_dict(json.loads(line)))
        except (ValueError, SignatureError):
            continue
    return heads


def _diagnose(index: int) -> str:
    record = ArchivedRecord.objects.filter(log_index=index).first()
    if record is None:
        return ""
    payload = bytes(record.raw_payload)
    if hashlib.sha256(payload).hexdigest() != record.raw_payload_sha256:
        return "its raw payload bytes were altered (they no longer match their recorded SHA-256)"
    if content_sha256(record_content_from_row(record)) != record.content_sha256:
        return (
            "its content was altered (text, author, participants, thread ids, attachments, "
            "network timestamp or marks no longer match the recorded content hash)"
        )
    return (
        "its capture metadata was altered (capture timestamp, version, source or "
        "previous-version link), or its stored leaf hash was rewritten"
    )


def _default_workers() -> int:
    """Processes that rebuild and hash records: one a CPU, when they can see the data (not in
    an uncommitted transaction, not an in-memory database)."""
    from django.db import connection

    name = str(connection.settings_dict.get("NAME") or "")
    if connection.in_atomic_block or ":memory:" in name or "mode=memory" in name:
        return 1
    return min(os.cpu_count() or 1, 8)


def verify_database(
    *, include_witness: bool = True, workers: int | None = None
) -> DatabaseVerification:
    """Verify the whole log from the rows (``vetline archive verify``). ``workers``: processes
    rebuilding the records' leaves on a long log (default: one a CPU; see EntrySource)."""
    entries = EntrySource(workers=_default_workers() if workers is None else workers)
    heads = [head_from_row(row) for row in TreeHead.objects.order_by("id")]
    seen = {h.signature for h in heads}
    extra = [h for h in witness_heads() if h.signature not in seen] if include_witness else []
    # The bytes are rebuilt here with the canonical encoder, so only entries that do not hash
    # to their leaf hash (that is, altered ones) are worth parsing for their canonical form.
    report = verify_log(entries, [*heads, *extra], keyring(), canonical_only_if_mismatched=True)
    named = leaf_objects(
        [*entries.relinked, *(f.index for f in report.findings if f.index is not None)]
    )

    for index, record_id in sorted(entries.relinked.items()):
        _, object_id = named[index]
        report.add(
            Finding(
                FindingKind.RECORD_MOVED,
                f"the log entry names record #{object_id} but the row at this index is record "
                f"#{record_id}: rows were reordered or their contents swapped",
                index,
            )
        )
    for record_id in unlogged_records(report.log_size):
        report.add(
            Finding(
                FindingKind.RECORD_UNLOGGED,
                f"archived record #{record_id} claims a log index beyond the end of the log: "
                "it was inserted outside Vetline, or the log was truncated",
            )
        )
    state = LogState.objects.filter(pk=1).first()
    if state is not None and state.size > report.log_size:
        report.add(
            Finding(
                FindingKind.LOG_TRUNCATED,
                f"the log state records {state.size:,} entries but only {report.log_size:,} "
                f"exist: entries {report.log_size}..{state.size - 1} were removed",
                tree_size=state.size,
            )
        )
    elif (
        state is not None
        and state.size == report.verified_tree_size
        and fold_subtrees(split_frontier(state.frontier, state.size)) != report.root
    ):
        report.add(
            Finding(
                FindingKind.HEAD_ROOT_MISMATCH,
                "the log state's root differs from the root recomputed from the entries",
                tree_size=state.size,
            )
        )

    result = DatabaseVerification(report=report, counts=dict(report.counts))
    result.witness_heads = len(extra)
    for finding in report.findings:
        item = finding.to_dict()
        if finding.index is not None:
            leaf = named.get(finding.index)
            leaf_kind, leaf_object = leaf if leaf is not None else (None, None)
            item["object"] = describe_index(finding.index, leaf_kind, leaf_object)
            if finding.kind is FindingKind.RECORD_MODIFIED and leaf_kind == LeafKind.RECORD:
                diagnosis = _diagnose(finding.index)
                if diagnosis:
                    item["detail"] = f"{diagnosis}. {finding.detail}"
        result.findings.append(item)
    return result
