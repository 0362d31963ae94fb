"""Full verification of the integrity log: recompute everything, name precisely what is wrong.

Input: the log's entries as ``(index, canonical leaf bytes, stored leaf hash)`` in storage order,
the stored signed tree heads (including witness copies held elsewhere), and the trusted keys.
Output: a :class:`VerificationReport` listing every :class:`Finding` with its kind, the index or
tree size concerned, and a sentence saying what it means.

How each kind of tampering shows up:

==========================  =====================================================================
tampering                   finding
==========================  =====================================================================
byte flipped in a record    ``record_modified`` at that index (canonical bytes no longer hash to
or its payload              the stored leaf hash; the raw payload is in the leaf as its SHA-256)
timestamp altered           ``record_modified`` at that index: timestamps are inside the canonical
                            bytes, so an altered timestamp is a content mismatch (said in detail)
record and its stored       ``head_root_mismatch`` for every signed head covering it, narrowed
leaf hash both rewritten    down to the index range between the last matching and first failing
                            head
row deleted                 ``record_missing`` at that index
rows reordered              ``out_of_order`` (storage order differs from the index order) or
                            ``record_moved`` (row contents swapped between indices)
log truncated               ``log_truncated``: a signed head covers more entries than exist
forged tree head            ``head_bad_signature`` / ``head_unknown_key`` (signature), or
                            ``head_root_mismatch`` (validly signed root that the log does not
                            produce)
two heads that disagree     ``head_inconsistent`` (same size, different roots; a later head with
                            a smaller size; a consistency proof that fails)
==========================  =====================================================================
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from vetline.archive.integrity.canonical import (
    DISPOSAL_LEAF_PREFIX,
    TOMBSTONE_PREFIX,
    CanonicalError,
    parse_leaf,
    parse_tombstone,
)
from vetline.archive.integrity.merkle import (
    EMPTY_ROOT,
    LEAF_PREFIX,
    StreamingTreeHasher,
    verify_consistency,
)
from vetline.archive.integrity.sth import HeadCheck, Keyring, SignedTreeHead

_BATCH = 65536


@dataclass(frozen=True, slots=True)
class VerifiedRun:
    """Consecutive log entries ``start, start + 1, …`` whose canonical bytes the entry source
    rebuilt, hashed, and found equal to their stored leaf hashes; ``hashes`` is those leaf
    hashes, 32 bytes each. A source that checks the content itself (``vetline archive verify``)
    passes runs instead of one ``(index, bytes, hash)`` entry each: the position checks and the
    tree then take the hashes directly, which is most of the cost of a long log."""

    start: int
    hashes: bytes

    def __len__(self) -> int:
        return len(self.hashes) // 32

    def entries(self) -> list[tuple[int, object, bytes]]:
        h = self.hashes
        return [(self.start + i, VERIFIED, h[32 * i : 32 * i + 32]) for i in range(len(self))]


# Stands for the bytes of an entry of a VerifiedRun: they hash to the stored leaf hash.
VERIFIED: Final = object()

# (index, canonical bytes or None when the row holding them is gone, stored leaf hash), or a run
LogEntry = tuple[int, bytes | None, bytes] | VerifiedRun


class FindingKind(StrEnum):
    RECORD_MODIFIED = "record_modified"
    RECORD_MOVED = "record_moved"
    RECORD_MISSING = "record_missing"
    CONTENT_MISSING = "content_missing"
    RECORD_UNLOGGED = "record_unlogged"
    OUT_OF_ORDER = "out_of_order"
    DUPLICATE_INDEX = "duplicate_index"
    INVALID_ENTRY = "invalid_entry"
    NON_CANONICAL = "non_canonical"
    UNDOCUMENTED_DISPOSAL = "undocumented_disposal"
    LOG_TRUNCATED = "log_truncated"
    HEAD_BAD_SIGNATURE = "head_bad_signature"
    HEAD_UNKNOWN_KEY = "head_unknown_key"
    HEAD_ROOT_MISMATCH = "head_root_mismatch"
    HEAD_INCONSISTENT = "head_inconsistent"
    HEAD_UNVERIFIABLE = "head_unverifiable"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    detail: str
    index: int | None = None
    tree_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "index": self.index,
            "tree_size": self.tree_size,
            "detail": self.detail,
        }


@dataclass
class VerificationReport:
    entries_checked: int = 0
    log_size: int = 0  # one past the highest index seen
    heads_checked: int = 0
    heads_verified: int = 0
    disposed_records: int = 0
    verified_tree_size: int = 0  # leaves the recomputation covered without a gap
    root: bytes = EMPTY_ROOT  # recomputed root over verified_tree_size leaves
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    max_findings_per_kind: int = 1000

    @property
    def ok(self) -> bool:
        return not self.counts

    def add(self, finding: Finding) -> None:
        count = self.counts.get(finding.kind.value, 0) + 1
        self.counts[finding.kind.value] = count
        if count <= self.max_findings_per_kind:
            self.findings.append(finding)

    def of_kind(self, kind: FindingKind) -> list[Finding]:
        return [f for f in self.findings if f.kind is kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries_checked": self.entries_checked,
            "log_size": self.log_size,
            "verified_tree_size": self.verified_tree_size,
            "root_hash": self.root.hex(),
            "heads_checked": self.heads_checked,
            "heads_verified": self.heads_verified,
            "disposed_records": self.disposed_records,
            "counts": dict(self.counts),
            "findings": [f.to_dict() for f in self.findings],
        }

    def render_text(self) -> str:
        lines = [
            f"entries checked: {self.entries_checked}, log size: {self.log_size}, "
            f"tree heads checked: {self.heads_checked} ({self.heads_verified} verified), "
            f"disposed records: {self.disposed_records}",
            f"recomputed root over {self.verified_tree_size} leaves: {self.root.hex()}",
        ]
        if self.ok:
            lines.append("RESULT: the log verifies; no tampering found.")
            return "\n".join(lines)
        lines.append("RESULT: FAILED")
        for kind, count in sorted(self.counts.items()):
            lines.append(f"  {kind}: {count}")
        for f in self.findings:
            where = f"index {f.index}" if f.index is not None else f"tree size {f.tree_size}"
            lines.append(f"- [{f.kind.value}] {where}: {f.detail}")
        shown = len(self.findings)
        total = sum(self.counts.values())
        if total > shown:
            lines.append(f"... and {total - shown} more findings not listed")
        return "\n".join(lines)


_MODIFIED_DETAIL = (
    "the record's canonical bytes do not hash to the leaf hash stored when it was logged: its "
    "content was modified (text, raw payload hash, author, participants, or its network or "
    "capture timestamps; timestamps are inside the canonical bytes, so an altered timestamp is "
    "reported as this content mismatch)"
)


def verify_log(
    entries: Iterable[LogEntry],
    tree_heads: Iterable[SignedTreeHead],
    keyring: Keyring,
    *,
    consistency_proofs: Mapping[tuple[int, int], Sequence[bytes]] | None = None,
    check_canonical: bool = True,
    canonical_only_if_mismatched: bool = False,
    max_findings_per_kind: int = 1000,
    max_pending: int = 1_000_000,
) -> VerificationReport:
    """Recompute every leaf hash and every tree head; report every discrepancy.

    ``canonical_only_if_mismatched``: check the canonical form only of entries whose bytes do
    not hash to their stored leaf hash. For bytes a verifier rebuilt itself with the canonical
    encoder (``vetline archive verify`` rebuilds them from the rows): bytes that hash to the
    leaf hash are the bytes that were logged, which were canonical, so parsing them again
    proves nothing and costs more than the rest of the check.

    ``entries`` should come in index order (``ORDER BY index``); entries out of order are
    buffered (up to ``max_pending``) and reported. The stored leaf hashes (checked against the
    content) feed the tree, so one modified record is reported once, at its index, rather than as
    a failure of every later tree head. An entry may also be a :class:`VerifiedRun`: entries
    whose content the source has already checked against their leaf hashes.
    """
    report = VerificationReport(max_findings_per_kind=max_findings_per_kind)
    heads = list(tree_heads)
    report.heads_checked = len(heads)
    valid_heads = _check_heads(heads, keyring, report)

    checkpoints: dict[int, list[SignedTreeHead]] = {}
    for head in valid_heads:
        checkpoints.setdefault(head.tree_size, []).append(head)
    pending_sizes = sorted(checkpoints)
    head_result: dict[int, bool] = {}  # tree size -> recomputed root matched

    hasher = StreamingTreeHasher()
    batch: list[bytes] = []
    cp_pos = 0
    next_cp = pending_sizes[0] if pending_sizes else -1

    def check_checkpoint() -> None:
        nonlocal cp_pos, next_cp
        root = hasher.root()
        size = hasher.size
        matched = True
        for head in checkpoints[size]:
            if head.root_hash != root:
                matched = False
        head_result[size] = matched
        cp_pos += 1
        next_cp = pending_sizes[cp_pos] if cp_pos < len(pending_sizes) else -1

    if next_cp == 0:
        check_checkpoint()

    def flush() -> None:
        if batch:
            hasher.extend(batch)
            batch.clear()
        if hasher.size == next_cp:
            check_checkpoint()

    broken_at: int | None = None  # first missing index: the tree cannot be recomputed past it

    def feed(value: bytes) -> None:
        if broken_at is not None:
            return
        batch.append(value)
        if hasher.size + len(batch) == next_cp or len(batch) >= _BATCH:
            flush()

    def feed_many(values: bytes) -> None:
        # 32-byte hashes, in order: as many feed() calls, stopping at every checkpoint
        position, end = 0, len(values)
        while position < end and broken_at is None:
            room = _BATCH - len(batch)
            at = hasher.size + len(batch)
            if next_cp > at:
                room = min(room, next_cp - at)
            take = min(room, (end - position) // 32)
            batch.extend(values[i : i + 32] for i in range(position, position + 32 * take, 32))
            position += 32 * take
            if hasher.size + len(batch) == next_cp or len(batch) >= _BATCH:
                flush()

    expected = 0
    pending: dict[int, bytes] = {}
    late: set[int] = set()
    mismatches: list[tuple[int, bytes, bytes]] = []
    tombstones: dict[int, bytes] = {}
    documented: dict[int, bytes] = {}
    max_index = -1
    sha256 = hashlib.sha256
    prefix = LEAF_PREFIX

    def declare_missing(start: int, stop: int) -> None:
        nonlocal broken_at
        if broken_at is None:
            flush()
            broken_at = start
        for missing in range(start, stop):
            late.add(missing)
            report.add(
                Finding(
                    FindingKind.RECORD_MISSING,
                    "no row holds this index: the record was deleted from the log",
                    index=missing,
                )
            )

    for item in entries:
        if type(item) is VerifiedRun:
            count = len(item)
            if item.start == expected and not pending and count:
                # the common case: the next entries, in order, content already checked
                report.entries_checked += count
                expected += count
                max_index = max(max_index, expected - 1)
                feed_many(item.hashes)
                continue
            group: Iterable[Any] = item.entries()
        else:
            group = (item,)
        for entry in group:
            report.entries_checked += 1
            try:
                index, data, stored = entry
                valid = isinstance(index, int) and index >= 0 and len(stored) == 32
            except (TypeError, ValueError):
                valid = False
            if not valid:
                report.add(
                    Finding(
                        FindingKind.INVALID_ENTRY,
                        f"entry #{report.entries_checked} is not (index >= 0, bytes, 32-byte hash)",
                    )
                )
                continue
            stored = bytes(stored)
            if index > max_index:
                max_index = index

            if data is VERIFIED:
                pass
            elif data is None:
                report.add(
                    Finding(
                        FindingKind.CONTENT_MISSING,
                        "the log holds this entry's hash but the row holding its content was "
                        "deleted",
                        index,
                    )
                )
            else:
                data = bytes(data)
                # 1. the leaf's content against its stored hash
                if data.startswith(TOMBSTONE_PREFIX):
                    try:
                        tomb = parse_tombstone(data)
                    except CanonicalError as exc:
                        report.add(
                            Finding(FindingKind.NON_CANONICAL, f"bad tombstone: {exc}", index)
                        )
                    else:
                        report.disposed_records += 1
                        tombstones[index] = stored
                        if tomb.leaf_hash != stored or tomb.index != index:
                            report.add(
                                Finding(
                                    FindingKind.RECORD_MODIFIED,
                                    "the disposed-record tombstone does not name this index and "
                                    "its stored leaf hash",
                                    index,
                                )
                            )
                else:
                    computed = sha256(prefix + data).digest()
                    if computed != stored:
                        mismatches.append((index, computed, stored))
                        parse = check_canonical
                    else:
                        parse = check_canonical and not canonical_only_if_mismatched
                    if parse:
                        try:
                            parsed = parse_leaf(data)
                        except CanonicalError as exc:
                            report.add(Finding(FindingKind.NON_CANONICAL, str(exc), index))
                        else:
                            if parsed.leaf_type == "disposal":
                                _note_disposal(parsed.body, documented)
                    elif data.startswith(DISPOSAL_LEAF_PREFIX):
                        try:
                            body = json.loads(data[len(DISPOSAL_LEAF_PREFIX) :])
                        except ValueError:
                            body = {}
                        _note_disposal(body if isinstance(body, dict) else {}, documented)

            # 2. its position
            if index == expected:
                if pending:
                    report.add(
                        Finding(
                            FindingKind.OUT_OF_ORDER,
                            "row stored after rows with higher indices (rows reordered)",
                            index,
                        )
                    )
                feed(stored)
                expected += 1
                while expected in pending:
                    feed(pending.pop(expected))
                    expected += 1
            elif index < expected or index in pending:
                if index in late:
                    late.discard(index)
                    report.add(
                        Finding(
                            FindingKind.OUT_OF_ORDER,
                            "row stored far out of index order (reported missing before it "
                            "appeared)",
                            index,
                        )
                    )
                else:
                    report.add(
                        Finding(FindingKind.DUPLICATE_INDEX, "a second row holds this index", index)
                    )
            else:
                pending[index] = stored
                if len(pending) > max_pending:
                    first = min(pending)
                    declare_missing(expected, first)
                    expected = first
                    while expected in pending:
                        pending.pop(expected)
                        expected += 1

    while pending:
        first = min(pending)
        declare_missing(expected, first)
        expected = first
        while expected in pending:
            feed(pending.pop(expected))
            expected += 1
    flush()

    report.log_size = max_index + 1
    report.verified_tree_size = hasher.size
    report.root = hasher.root()

    _report_mismatches(mismatches, report)
    _report_disposals(tombstones, documented, report)
    _report_heads(valid_heads, head_result, broken_at, report)
    if consistency_proofs:
        _check_consistency_proofs(valid_heads, consistency_proofs, report)
    return report


def _note_disposal(body: Mapping[str, Any], documented: dict[int, bytes]) -> None:
    idx, original = body.get("disposed_index"), body.get("original_leaf_hash")
    if isinstance(idx, int) and isinstance(original, str):
        try:
            documented[idx] = bytes.fromhex(original)
        except ValueError:
            documented[idx] = b""


def _check_heads(
    heads: list[SignedTreeHead], keyring: Keyring, report: VerificationReport
) -> list[SignedTreeHead]:
    valid: list[SignedTreeHead] = []
    for head in heads:
        check = keyring.check_tree_head(head)
        stamp = f"(signed {head.timestamp_ms} ms, key {head.key_id.hex()[:16]}…)"
        if check is HeadCheck.UNKNOWN_KEY:
            report.add(
                Finding(
                    FindingKind.HEAD_UNKNOWN_KEY,
                    f"tree head {stamp} is signed by a key that is not in the keyring: "
                    "forged or from another system",
                    tree_size=head.tree_size,
                )
            )
        elif check is HeadCheck.BAD_SIGNATURE:
            report.add(
                Finding(
                    FindingKind.HEAD_BAD_SIGNATURE,
                    f"tree head {stamp} has a signature that does not verify: the head was "
                    "forged or altered",
                    tree_size=head.tree_size,
                )
            )
        else:
            valid.append(head)
    report.heads_verified = len(valid)

    by_size: dict[int, SignedTreeHead] = {}
    for head in valid:
        seen = by_size.setdefault(head.tree_size, head)
        if seen.root_hash != head.root_hash:
            report.add(
                Finding(
                    FindingKind.HEAD_INCONSISTENT,
                    "two validly signed tree heads of the same size have different roots "
                    f"({seen.root_hash.hex()[:16]}… at {seen.timestamp_ms} ms, "
                    f"{head.root_hash.hex()[:16]}… at {head.timestamp_ms} ms): the log forked "
                    "or was rewritten",
                    tree_size=head.tree_size,
                )
            )
    ordered = sorted(valid, key=lambda h: (h.timestamp_ms, h.tree_size))
    for earlier, later in itertools.pairwise(ordered):
        if later.tree_size < earlier.tree_size and later.timestamp_ms > earlier.timestamp_ms:
            report.add(
                Finding(
                    FindingKind.HEAD_INCONSISTENT,
                    f"the head signed at {later.timestamp_ms} ms covers {later.tree_size} "
                    f"entries, fewer than the {earlier.tree_size} of the head signed at "
                    f"{earlier.timestamp_ms} ms: the log was rolled back",
                    tree_size=later.tree_size,
                )
            )
    return valid


def _report_mismatches(
    mismatches: list[tuple[int, bytes, bytes]], report: VerificationReport
) -> None:
    stored_at = {stored: index for index, _computed, stored in mismatches}
    for index, computed, _stored in mismatches:
        origin = stored_at.get(computed)
        if origin is not None and origin != index:
            report.add(
                Finding(
                    FindingKind.RECORD_MOVED,
                    f"this row holds the record that was logged at index {origin}: rows were "
                    "reordered or their contents swapped",
                    index,
                )
            )
        else:
            report.add(Finding(FindingKind.RECORD_MODIFIED, _MODIFIED_DETAIL, index))


def _report_disposals(
    tombstones: dict[int, bytes], documented: dict[int, bytes], report: VerificationReport
) -> None:
    for index, stored in sorted(tombstones.items()):
        original = documented.get(index)
        if original is None:
            report.add(
                Finding(
                    FindingKind.UNDOCUMENTED_DISPOSAL,
                    "the record's content was removed but no disposal leaf documents it",
                    index,
                )
            )
        elif original != stored:
            report.add(
                Finding(
                    FindingKind.UNDOCUMENTED_DISPOSAL,
                    "the disposal leaf names a different original leaf hash for this record",
                    index,
                )
            )


def _report_heads(
    valid_heads: list[SignedTreeHead],
    head_result: dict[int, bool],
    broken_at: int | None,
    report: VerificationReport,
) -> None:
    sizes = sorted({h.tree_size for h in valid_heads})
    last_good = 0
    for size in sizes:
        matched = head_result.get(size)
        if matched is True:
            last_good = size
            continue
        if matched is False:
            report.add(
                Finding(
                    FindingKind.HEAD_ROOT_MISMATCH,
                    f"the log's recomputed root over the first {size} entries differs from the "
                    f"signed root: a stored leaf hash in indices {last_good}..{size - 1} was "
                    "rewritten (with its record), or the head was forged with the signing key",
                    tree_size=size,
                )
            )
            continue
        if size > report.log_size:
            report.add(
                Finding(
                    FindingKind.LOG_TRUNCATED,
                    f"a signed tree head covers {size} entries but the log ends at "
                    f"{report.log_size}: entries {report.log_size}..{size - 1} were removed",
                    tree_size=size,
                )
            )
        else:
            report.add(
                Finding(
                    FindingKind.HEAD_UNVERIFIABLE,
                    f"the root over {size} entries cannot be recomputed because index "
                    f"{broken_at} is missing",
                    tree_size=size,
                )
            )


def _check_consistency_proofs(
    valid_heads: list[SignedTreeHead],
    proofs: Mapping[tuple[int, int], Sequence[bytes]],
    report: VerificationReport,
) -> None:
    by_size = {h.tree_size: h for h in valid_heads}
    for (old_size, new_size), proof in sorted(proofs.items()):
        old, new = by_size.get(old_size), by_size.get(new_size)
        if old is None or new is None:
            continue
        for finding in check_consistency(old, new, proof):
            report.add(finding)


def check_consistency(
    old: SignedTreeHead, new: SignedTreeHead, proof: Sequence[bytes]
) -> list[Finding]:
    """Check that ``new`` extends ``old`` (both heads should have verified signatures)."""
    if verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof):
        return []
    return [
        Finding(
            FindingKind.HEAD_INCONSISTENT,
            f"the consistency proof from size {old.tree_size} to size {new.tree_size} does not "
            "verify: the later head does not extend the earlier one (log rewritten or forked)",
            tree_size=new.tree_size,
        )
    ]
