"""The integrity log in the database: appending leaves, the :class:`HashStore` over the tables,
proofs, tree heads, and the entries :func:`verify_log` recomputes.

Appends are serialised by locking the single :class:`LogState` row (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite's IMMEDIATE transactions already serialise writers). The state keeps the log's
right-edge *frontier* (the complete subtrees whose fold is the root), so appending a batch reads
nothing but that row, and the root is known at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from typing import Any, Final

from django.conf import settings
from django.db import transaction

from vetline.archive.integrity.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    LEAF_PREFIX,
    NODE_PREFIX,
    MerkleError,
    MerkleTree,
    ProofElementPlan,
    consistency_proof_plan,
    fold_subtrees,
    inclusion_proof_plan,
    node_hash,
)
from vetline.archive.integrity.sth import Keyring, LogSigner, SignatureError, SignedTreeHead
from vetline.archive.integrity.verify import LogEntry, VerifiedRun
from vetline.archive.leaves import (
    encode_content_values,
    json_string,
    json_string_list,
    record_leaf_encoded,
    timestamp_text,
)
from vetline.archive.models import LeafKind, LogLeaf, LogNode, LogState, TreeHead

NODE_LEVEL_STRIDE: Final = 4  # store subtree hashes of levels 4, 8, 12, …
_KEY_SHIFT: Final = 48
_sha256 = hashlib.sha256


def node_key(level: int, index: int) -> int:
    return (level << _KEY_SHIFT) | index


def split_frontier(raw: bytes | memoryview, size: int) -> list[bytes]:
    data = bytes(raw)
    expected = size.bit_count() * HASH_SIZE
    if len(data) != expected:
        raise MerkleError(
            f"the log state is damaged: its frontier holds {len(data)} bytes, not {expected}"
        )
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def locked_state() -> LogState:
    """The log state row, locked until the end of the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("the log can only be appended to inside a transaction")
    state = LogState.objects.select_for_update().filter(pk=1).first()
    if state is None:
        LogState.objects.get_or_create(pk=1)
        state = LogState.objects.select_for_update().get(pk=1)
    return state


class LogAppender:
    """Appends leaves to the log inside one transaction. Call with the state row locked
    (:func:`locked_state`); ``reserve`` hands out indices, ``finish`` writes the subtree hashes
    and the new state. The caller writes the :class:`LogLeaf` rows (it knows the objects)."""

    def __init__(self, state: LogState) -> None:
        self.state = state
        self.start = state.size
        self.size = state.size
        self._stack = split_frontier(state.frontier, state.size)
        self._nodes: list[tuple[int, int, int, bytes]] = []  # (key, level, index, hash)

    def reserve(self, leaf_hash: bytes) -> int:
        index = self.size
        stack = self._stack
        stack.append(leaf_hash)
        self.size = m = index + 1
        level = 0
        node_index = index
        while not m & 1:
            right = stack.pop()
            value = _sha256(NODE_PREFIX + stack[-1] + right).digest()
            stack[-1] = value
            level += 1
            node_index >>= 1
            m >>= 1
            if level % NODE_LEVEL_STRIDE == 0:
                self._nodes.append((node_key(level, node_index), level, node_index, value))
        return index

    def root(self) -> bytes:
        return fold_subtrees(self._stack)

    def finish(self) -> None:
        if self._nodes:
            insert_rows(LogNode, ("key", "level", "index", "hash"), self._nodes)
            self._nodes = []
        if self.size != self.start:
            from django.utils import timezone

            LogState.objects.filter(pk=1).update(
                size=self.size,
                frontier=b"".join(self._stack),
                audit_high_water=self.state.audit_high_water,
                updated_at=timezone.now(),
            )
            self.state.size = self.size
            self.state.frontier = b"".join(self._stack)
            self.start = self.size


class DatabaseHashStore:
    """:class:`~vetline.archive.integrity.merkle.HashStore` over the log tables.

    ``prefetch`` loads every hash a proof plan needs in two queries; lookups then hit the cache.
    """

    def __init__(self, size: int | None = None) -> None:
        self._size = size if size is not None else current_size()
        self._leaves: dict[int, bytes] = {}
        self._nodes: dict[int, bytes] = {}

    def size(self) -> int:
        return self._size

    def _base(self, level: int, index: int) -> list[tuple[int, int]]:
        stored = level - level % NODE_LEVEL_STRIDE
        span = 1 << (level - stored)
        return [(stored, i) for i in range(index * span, (index + 1) * span)]

    def prefetch(self, refs: Iterable[tuple[int, int]]) -> None:
        leaves: set[int] = set()
        nodes: set[int] = set()
        for level, index in refs:
            for base_level, base_index in self._base(level, index):
                if base_level == 0:
                    leaves.add(base_index)
                else:
                    nodes.add(node_key(base_level, base_index))
        leaves -= self._leaves.keys()
        nodes -= self._nodes.keys()
        if leaves:
            for i, h in LogLeaf.objects.filter(index__in=leaves).values_list("index", "leaf_hash"):
                self._leaves[i] = bytes(h)
        if nodes:
            for k, h in LogNode.objects.filter(key__in=nodes).values_list("key", "hash"):
                self._nodes[k] = bytes(h)

    def leaf_hash(self, index: int) -> bytes:
        value = self._leaves.get(index)
        if value is None:
            self.prefetch([(0, index)])
            value = self._leaves.get(index)
        if value is None:
            raise MerkleError(f"no leaf at index {index}")
        return value

    def subtree_hash(self, level: int, index: int) -> bytes:
        if level == 0:
            return self.leaf_hash(index)
        base = self._base(level, index)
        base_level = base[0][0]
        if base_level == 0:
            layer = [self.leaf_hash(i) for _, i in base]
        else:
            missing = [r for r in base if node_key(*r) not in self._nodes]
            if missing:
                self.prefetch(missing)
            try:
                layer = [self._nodes[node_key(*r)] for r in base]
            except KeyError as exc:
                raise MerkleError(f"no complete subtree at level {level}, index {index}") from exc
        while len(layer) > 1:
            layer = [node_hash(a, b) for a, b in zip(layer[0::2], layer[1::2], strict=True)]
        return layer[0]

    def append(self, leaf_hash: bytes, completed: Sequence[tuple[int, int, bytes]]) -> None:
        raise MerkleError("append through LogAppender, inside a transaction with the state locked")


def current_size() -> int:
    state = LogState.objects.filter(pk=1).values_list("size", flat=True).first()
    return int(state or 0)


def current_root() -> tuple[int, bytes]:
    state = LogState.objects.filter(pk=1).first()
    if state is None or state.size == 0:
        return 0, EMPTY_ROOT
    return state.size, fold_subtrees(split_frontier(state.frontier, state.size))


def _flatten(plan: list[ProofElementPlan]) -> list[tuple[int, int]]:
    return [ref for element in plan for ref in element]


def inclusion_proof(index: int, tree_size: int) -> list[bytes]:
    store = DatabaseHashStore(tree_size)
    store.prefetch(_flatten(inclusion_proof_plan(index, tree_size)))
    return MerkleTree(store).inclusion_proof(index, tree_size)


def consistency_proof(old_size: int, new_size: int) -> list[bytes]:
    store = DatabaseHashStore(new_size)
    store.prefetch(_flatten(consistency_proof_plan(old_size, new_size)))
    return MerkleTree(store).consistency_proof(old_size, new_size)


def root_at(tree_size: int) -> bytes:
    from vetline.archive.integrity.merkle import range_decomposition

    store = DatabaseHashStore(tree_size)
    refs = list(range_decomposition(0, tree_size))
    store.prefetch(refs)
    return fold_subtrees([store.subtree_hash(level, i) for level, i in refs])


# --------------------------------------------------------------------------- keys and heads


def signer() -> LogSigner:
    """The tree-head signing key from ``VETLINE_LOG_SIGNING_KEY`` (PEM or raw base64)."""
    import base64

    raw = (getattr(settings, "VETLINE_LOG_SIGNING_KEY", "") or "").strip()
    if not raw:
        raise SignatureError(
            "No log signing key: set VETLINE_LOG_SIGNING_KEY (an Ed25519 PEM or base64 key)."
        )
    if raw.startswith("-----BEGIN"):
        return LogSigner.from_pem(raw.encode())
    try:
        seed = base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise SignatureError("VETLINE_LOG_SIGNING_KEY is neither a PEM nor base64") from exc
    if len(seed) != 32:
        raise SignatureError("VETLINE_LOG_SIGNING_KEY must hold a 32-byte Ed25519 private key")
    return LogSigner.from_private_bytes(seed)


def keyring() -> Keyring:
    """Trusted public keys: the current signing key and the retired keys configured in
    ``VETLINE_LOG_TRUSTED_KEYS``. Never read from the database, which is what is verified."""
    ring = Keyring([signer().public_key_bytes])
    for entry in getattr(settings, "VETLINE_LOG_TRUSTED_KEYS", []):
        try:
            ring.add(bytes.fromhex(entry))
        except (ValueError, SignatureError):
            continue
    return ring


def head_from_row(row: TreeHead) -> SignedTreeHead:
    return SignedTreeHead(
        tree_size=row.tree_size,
        root_hash=bytes(row.root_hash),
        timestamp_ms=row.timestamp_ms,
        key_id=bytes(row.key_id),
        signature=bytes(row.signature),
        version=row.version,
    )


# --------------------------------------------------------------------------- verification input


# One query per range of indices reads the leaves and the records they log, as plain tuples (no
# model instances), in index order.
_ENTRY_COLUMNS: Final = (
    'l."index", l.leaf_hash, l.kind, l.object_id, r.id, r.account_id, r.adopted,'
    " r.approval_ref, {attachments}, r.author_handle, r.conversation_id, r.direction, r.kind,"
    " r.network, {network_timestamp}, r.parent_remote_id, {participants},"
    " r.raw_payload_sha256, r.record_class, r.remote_id, r.text, r.thread_id, {captured_at},"
    " r.previous_log_index, r.source, r.version, r.raw_payload"
)
# Both sides bounded: PostgreSQL then merges two index range scans (unbounded, it sorts a
# parallel plan, several times slower, or merges from the table's first record).
_ENTRY_SQL: Final = (
    "SELECT {columns} FROM archive_logleaf l LEFT JOIN archive_archivedrecord r"
    ' ON l.kind = 1 AND r.log_index = l."index" AND r.log_index >= %s AND r.log_index < %s'
    ' WHERE l."index" >= %s AND l."index" < %s ORDER BY l."index"'
)


def _entry_sql(vendor: str) -> str:
    """The entries of indices ``lo <= i < hi``; parameters ``[lo, hi, lo, hi]``."""
    if vendor == "sqlite":
        # CAST drops the declared type, so the driver does not parse the stored text
        fields = {
            "network_timestamp": "CAST(r.network_timestamp AS TEXT)",
            "captured_at": "CAST(r.captured_at AS TEXT)",
            "participants": "r.participants",
            "attachments": "r.attachments",
        }
    else:
        # jsonb as its text: decoding it into Python objects costs more than the rest of a row;
        # timestamps as naive UTC values (no time zone conversion in Python)
        fields = {
            "network_timestamp": "r.network_timestamp AT TIME ZONE 'UTC'",
            "captured_at": "r.captured_at AT TIME ZONE 'UTC'",
            "participants": "r.participants::text",
            "attachments": "r.attachments::text",
        }
    return _ENTRY_SQL.format(columns=_ENTRY_COLUMNS.format(**fields))


def _db_timestamp_text(value: Any) -> str | None:
    """A stored timestamp as canonical text, as the ORM would read it: naive UTC datetimes
    (PostgreSQL, read ``AT TIME ZONE 'UTC'``), or Django's naive-UTC text on SQLite
    (``YYYY-MM-DD HH:MM:SS[.ffffff]``)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            if value.year < 1000:
                return timestamp_text(value.replace(tzinfo=dt.UTC))
            text = value.isoformat()  # YYYY-MM-DDTHH:MM:SS[.ffffff]
            return f"{text}.000000Z" if len(text) == 19 else f"{text}Z"
        return timestamp_text(value)
    text = str(value)
    if text[:1] != "0" and text[10:11] == " ":  # years before 1000 take the general path
        if len(text) == 26 and text[19] == ".":
            return f"{text[:10]}T{text[11:]}Z"
        if len(text) == 19:
            return f"{text[:10]}T{text[11:]}.000000Z"
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    try:
        parsed = parse_datetime(text)
    except ValueError:
        parsed = None
    if parsed is None:
        return text  # unreadable: cannot match what was logged, so the entry is reported
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    return timestamp_text(parsed)


# What Django's JSONField (and PostgreSQL's jsonb output) writes for a list of strings that need
# no escaping: '["a", "b"]'. No such string holds a quote, so the quotes pair up in order and the
# strings are read off between them, already in their canonical spelling; any other text is
# decoded and encoded again.
_PLAIN_STRING_LIST = re.compile(r'\["[^"\\\x00-\x1f]*"(?:, "[^"\\\x00-\x1f]*")*\]')
_QUOTED = re.compile(r'"([^"]*)"')


def _db_list_json(value: Any) -> str:
    """A JSON list column (its text) as canonical JSON of the value the ORM would read."""
    if value == "[]":
        return "[]"
    if type(value) is str:
        if _PLAIN_STRING_LIST.fullmatch(value):
            return '["' + '","'.join(_QUOTED.findall(value)) + '"]'
        try:
            value = json.loads(value)
        except ValueError:
            return json_string(value)  # not JSON: cannot match what was logged
    return json_string_list(value)


ENTRY_CHUNK = 20_000  # entries a query (and a worker's task)
PARALLEL_MIN_ENTRIES = 200_000  # below this, starting worker processes costs more than it saves


@dataclass
class EntrySource:
    """Streams the log's entries in index order for :func:`verify_log`, rebuilding each leaf's
    canonical bytes from the row it logs: ``(index, canonical bytes or None, stored leaf hash)``
    for anything verify_log must look at (audit events, disposals, missing or altered content),
    and :class:`VerifiedRun` for runs of records whose rebuilt bytes hash to their stored leaf
    hash. Remembers what is needed to explain a finding: records whose payload no longer matches
    its hash, and rows that moved.

    With ``workers`` > 1 (and a long enough log), the records are rebuilt and hashed by that
    many processes, each over its own ranges of indices, and the results are put back in order
    here; the tree and every check of position and tree heads stay in this process."""

    chunk: int = field(default_factory=lambda: ENTRY_CHUNK)
    workers: int = 1
    payload_mismatch: set[int] = field(default_factory=set)
    relinked: dict[int, int] = field(default_factory=dict)  # index -> record id at that index

    def __iter__(self) -> Iterator[LogEntry]:
        lo: int | None = _first_index_from(0)
        if lo is None:
            return
        top = _first_index_from(None)
        assert top is not None  # a first index, so a last one
        # Worker processes over 0..top when the indices are dense enough for ranges by value
        # (a stray huge index, inserted outside Vetline, is left to the sequential reads).
        if (
            self.workers > 1
            and top + 1 >= PARALLEL_MIN_ENTRIES
            and top + 1 <= 2 * LogLeaf.objects.count()
        ):
            yield from self._parallel(top + 1)
            lo = _first_index_from(top + 1)
        # sequentially: everything, or what follows the workers' ranges (appended meanwhile)
        checker = _RowChecker()
        while lo is not None:
            yield from checker.check(_fetch_entries(lo, lo + self.chunk))
            lo = _first_index_from(lo + self.chunk)  # skips gaps, sees appended entries
        self.payload_mismatch |= checker.payload_mismatch
        self.relinked.update(checker.relinked)

    def _parallel(self, end: int) -> Iterator[LogEntry]:
        """Indices ``0..end - 1`` in ranges of ``chunk``, dealt round-robin to ``workers``
        processes; their results are read back in index order."""
        import os
        import pickle
        import subprocess
        import sys

        from django.db import connection

        ranges = [(lo, min(lo + self.chunk, end)) for lo in range(0, end, self.chunk)]
        count = min(self.workers, len(ranges))
        # Plain interpreters running one function ("-c": no __main__ to re-import, no fork of
        # a process that may run threads), with this process's import path and settings; each
        # opens its own connection to this process's database (possibly a test database).
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "vetline.settings"),
        }
        workers = [
            subprocess.Popen(  # noqa: S603 (this interpreter, a constant program)
                [sys.executable, "-c", _WORKER_PROGRAM],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            for _ in range(count)
        ]
        try:
            for number, worker in enumerate(workers):
                assert worker.stdin is not None  # PIPE
                pickle.dump((dict(connection.settings_dict), ranges[number::count]), worker.stdin)
                worker.stdin.close()
            for number in range(len(ranges)):
                stdout = workers[number % count].stdout
                assert stdout is not None  # PIPE
                try:
                    # our own child's answer (S301: not untrusted data)
                    status, payload = pickle.load(stdout)  # noqa: S301
                except EOFError:
                    status, payload = "error", "the process ended without an answer"
                if status != "ok":
                    raise RuntimeError(f"a verification worker failed: {payload}")
                entries, payload_mismatch, relinked = payload
                self.payload_mismatch |= payload_mismatch
                self.relinked.update(relinked)
                yield from entries
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                worker.wait()
                if worker.stdout is not None:
                    worker.stdout.close()


_WORKER_PROGRAM: Final = (
    "import django; django.setup(); from vetline.archive.log import _verify_worker; "
    "_verify_worker()"
)


def _verify_worker() -> None:
    """A verification worker process (Django set up): reads (database settings, ranges) from
    stdin, answers each range's checked entries on stdout, in order (see EntrySource)."""
    import pickle
    import sys
    import traceback

    from django.db import connections

    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout carries the answers only
    database, ranges = pickle.load(sys.stdin.buffer)  # noqa: S301 (from the parent process)

    connections["default"].settings_dict.update(database)  # e.g. the test database's name
    for lo, hi in ranges:
        try:
            answer: tuple[str, Any] = ("ok", _check_range(lo, hi))
        except Exception:  # reported to the parent, which fails the verification
            answer = ("error", traceback.format_exc())
        pickle.dump(answer, out)
        out.flush()
        if answer[0] != "ok":
            return


def _first_index_from(lo: int | None) -> int | None:
    """The lowest log index >= ``lo`` (None: the highest index), or None if there is none."""
    leaves = LogLeaf.objects.all()
    if lo is None:
        return leaves.order_by("-index").values_list("index", flat=True).first()
    return leaves.filter(index__gte=lo).order_by("index").values_list("index", flat=True).first()


def _fetch_entries(lo: int, hi: int) -> list[Any]:
    """Rows of ``_entry_sql`` for indices ``lo <= i < hi``. PostgreSQL: in the binary format
    (the text format costs the client more to parse than everything else done with a row)."""
    from django.db import connection

    sql = _entry_sql(connection.vendor)
    params = [lo, hi, lo, hi]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows: list[Any] = cursor.fetchall()
            return rows
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()


def _check_range(lo: int, hi: int) -> tuple[list[LogEntry], set[int], dict[int, int]]:
    """A worker's part: the entries of indices ``lo..hi - 1``, checked (see EntrySource)."""
    rows = _fetch_entries(lo, hi)
    checker = _RowChecker()
    entries = checker.check(rows)
    return entries, checker.payload_mismatch, checker.relinked


class _RowChecker:
    """Rebuilds the leaf bytes of fetched log rows (``_ENTRY_COLUMNS``) and checks them."""

    def __init__(self) -> None:
        self.payload_mismatch: set[int] = set()
        self.relinked: dict[int, int] = {}
        # A batch's records share one capture time: remember the last one converted.
        self._captured: Any = None
        self._captured_text = ""

    def check(self, rows: list[Any]) -> list[LogEntry]:
        from vetline.archive.integrity.canonical import TOMBSTONE_PREFIX

        record_kind = int(LeafKind.RECORD)
        sha256 = _sha256
        leaf_prefix = LEAF_PREFIX
        tombstone = TOMBSTONE_PREFIX
        stamp = _db_timestamp_text
        list_json = _db_list_json
        payload_mismatch = self.payload_mismatch
        relinked = self.relinked
        last_captured = self._captured
        last_captured_text = self._captured_text
        others = _other_leaves(rows, record_kind)
        out: list[LogEntry] = []
        # Records whose rebuilt bytes hash to their stored leaf hash go out as runs of
        # consecutive entries (VerifiedRun); anything else as an entry of its own, checked by
        # verify_log itself.
        run_start = 0
        run: list[bytes] = []
        for row in rows:
            (
                index,
                stored,
                kind,
                object_id,
                record_id,
                account_id,
                adopted,
                approval_ref,
                attachments,
                author,
                conversation_id,
                direction,
                record_kind_name,
                network,
                network_timestamp,
                parent_remote_id,
                participants,
                raw_payload_sha256,
                record_class,
                remote_id,
                text,
                thread_id,
                captured_at,
                previous_log_index,
                source,
                version,
                payload,
            ) = row
            if type(stored) is not bytes:
                stored = bytes(stored)
            data: bytes | None = None
            if kind != record_kind:
                data = others.get((kind, object_id))
            elif record_id is not None:
                if record_id != object_id:
                    relinked[index] = record_id
                if type(payload) is not bytes:
                    payload = _as_bytes(payload)
                if payload.startswith(tombstone):
                    # disposed: the verifier checks the tombstone and its disposal leaf
                    data = payload
                else:
                    digest = sha256(payload).hexdigest()
                    if digest != raw_payload_sha256:
                        payload_mismatch.add(index)
                    if captured_at != last_captured:
                        last_captured = captured_at
                        last_captured_text = stamp(captured_at) or ""
                    data = record_leaf_encoded(
                        encode_content_values(
                            account_id,
                            adopted,
                            approval_ref,
                            list_json(attachments),
                            author,
                            conversation_id,
                            direction,
                            record_kind_name,
                            network,
                            stamp(network_timestamp),
                            parent_remote_id,
                            list_json(participants),
                            digest,
                            record_class,
                            remote_id,
                            text,
                            thread_id,
                        ),
                        version=version,
                        previous_log_index=previous_log_index,
                        captured_at=last_captured_text,
                        source=source,
                    )
                    if sha256(leaf_prefix + data).digest() == stored:
                        if run and index != run_start + len(run):
                            out.append(VerifiedRun(run_start, b"".join(run)))
                            run = []
                        if not run:
                            run_start = index
                        run.append(stored)
                        continue
            if run:
                out.append(VerifiedRun(run_start, b"".join(run)))
                run = []
            out.append((index, data, stored))
        if run:
            out.append(VerifiedRun(run_start, b"".join(run)))
        self._captured, self._captured_text = last_captured, last_captured_text
        return out


def _other_leaves(rows: list[Any], record_kind: int) -> dict[tuple[int, int], bytes]:
    """Leaf bytes of the audit events and disposals among ``rows`` (few: one audit event a
    batch), built from their model rows."""
    from vetline.archive.leaves import audit_leaf_from_row
    from vetline.archive.models import DisposalRecord
    from vetline.archive.retention import disposal_leaf_from_row
    from vetline.audit.models import AuditEvent

    audit_ids = [r[3] for r in rows if r[2] == LeafKind.AUDIT_EVENT]
    disposal_ids = [r[3] for r in rows if r[2] == LeafKind.DISPOSAL]
    out: dict[tuple[int, int], bytes] = {}
    for start in range(0, len(audit_ids), 500):
        for event in AuditEvent.objects.filter(id__in=audit_ids[start : start + 500]):
            out[(LeafKind.AUDIT_EVENT.value, event.id)] = audit_leaf_from_row(event)
    for start in range(0, len(disposal_ids), 500):
        for disposal in DisposalRecord.objects.filter(id__in=disposal_ids[start : start + 500]):
            out[(LeafKind.DISPOSAL.value, disposal.id)] = disposal_leaf_from_row(disposal)
    return out


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return bytes(value)


def leaf_objects(indices: Iterable[int]) -> dict[int, tuple[int, int]]:
    """Log index -> (leaf kind, logged object id), for the indices a report names."""
    wanted = sorted(set(indices))
    out: dict[int, tuple[int, int]] = {}
    for start in range(0, len(wanted), 500):
        for index, kind, object_id in LogLeaf.objects.filter(
            index__in=wanted[start : start + 500]
        ).values_list("index", "kind", "object_id"):
            out[index] = (kind, object_id)
    return out


def unlogged_records(log_size: int) -> list[int]:
    """Ids of archived records that claim a log index the log does not have."""
    from vetline.archive.models import ArchivedRecord

    return list(
        ArchivedRecord.objects.filter(log_index__gte=log_size)
        .order_by("log_index")
        .values_list("id", flat=True)[:1000]
    )


def describe_index(index: int, kind: int | None, object_id: int | None) -> str:
    from vetline.archive.models import ArchivedRecord

    if kind == LeafKind.AUDIT_EVENT:
        return f"audit event #{object_id}"
    if kind == LeafKind.RECORD:
        row: Any = (
            ArchivedRecord.objects.filter(log_index=index)
            .values("id", "network", "account__handle", "remote_id", "version")
            .first()
        )
        if row is None:
            return f"archived record #{object_id} (row gone)"
        return (
            f"archived record #{row['id']} ({row['network']} {row['account__handle']}, "
            f"remote id {row['remote_id']}, version {row['version']})"
        )
    return "no leaf row"


class BulkInsert:
    """Rows into one table as they are produced, in as few statements as the database allows,
    without the ORM. Use inside the caller's transaction::

        with BulkInsert(ArchivedRecord, columns) as insert:
            insert.add(row)

    * PostgreSQL: one ``COPY … FROM STDIN`` stream; the server inserts while the caller is
      still computing the next rows.
    * SQLite: multi-row ``INSERT … VALUES (…), (…)`` statements, as many rows each as the
      library's parameter limit allows.

    ``columns`` are column names of ``model``'s table; values must already be in the form the
    driver takes (see :func:`db_datetime`, :func:`db_json`). Primary keys are not read back.
    Nothing else may use the connection until the block ends (a COPY may be in progress).

    Why statements and not ``executemany`` on SQLite: each statement that fires the full-text
    index's trigger (migration 0004) makes FTS5 write its pending index data out when the
    statement ends, so one row per statement costs several times a row of a multi-row statement.
    (Running the statements on a second thread while the next rows are computed was measured
    too: no faster on two shared CPUs, so it is not done.)
    """

    def __init__(self, model: type[Any], columns: Sequence[str]) -> None:
        from django.db import connection

        self._connection = connection
        qn = connection.ops.quote_name
        self._table = qn(model._meta.db_table)
        self._columns = ", ".join(qn(c) for c in columns)
        self._width = len(columns)
        self._postgres = connection.vendor == "postgresql"
        self._params: list[Any] = []  # the pending rows' values, flat
        self._rows = 0
        self._per_statement = 1
        self._stack = contextlib.ExitStack()
        self.add: Callable[[Sequence[Any]], None] = self._add_sqlite

    def __enter__(self) -> BulkInsert:
        connection = self._connection
        connection.ensure_connection()
        if self._postgres:
            cursor = self._stack.enter_context(connection.cursor())
            driver = cursor.cursor
            types = _column_types(driver, self._table, self._columns)
            driver.adapters.register_dumper(None, _json_text_binary_dumper())
            # identifiers come from the model and are quoted; values are streamed as data, in
            # the binary format (half the client's work of the text format, and no parsing)
            copy = self._stack.enter_context(
                driver.copy(f"COPY {self._table} ({self._columns}) FROM STDIN (FORMAT BINARY)")
            )
            copy.set_types(types)
            self.add = copy.write_row
        else:
            self._per_statement = max(1, _max_query_params(connection) // self._width)
        return self

    def _add_sqlite(self, row: Sequence[Any]) -> None:
        self._params.extend(row)
        self._rows += 1
        if self._rows >= self._per_statement:
            self._execute()

    def _execute(self) -> None:
        if not self._rows:
            return
        sql = _multi_row_insert(self._table, self._columns, self._width, self._rows)
        params, self._params, self._rows = self._params, [], 0
        # The driver's own connection and placeholders: Django's SQLite wrapper rewrites every
        # "%s" with a regular expression, slow on statements with thousands of parameters.
        # Errors still become Django's exceptions.
        with self._connection.wrap_database_errors:
            self._connection.connection.execute(sql, params)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None and not self._postgres:
                self._execute()
        finally:
            self._stack.__exit__(exc_type, exc, tb)


_COLUMN_TYPES: dict[tuple[str, str, str], list[int]] = {}


def _column_types(cursor: Any, table: str, columns: str) -> list[int]:
    """The type OIDs of ``columns`` of ``table`` (PostgreSQL), as a binary COPY needs them."""
    key = (str(cursor.connection.info.dbname), table, columns)
    types = _COLUMN_TYPES.get(key)
    if types is None:
        # identifiers come from the model and are quoted
        cursor.execute(f"SELECT {columns} FROM {table} LIMIT 0")  # noqa: S608
        types = _COLUMN_TYPES[key] = [column.type_code for column in cursor.description]
    return types


@functools.cache
def _json_text_binary_dumper() -> type[Any]:
    from psycopg import pq
    from psycopg.adapt import Dumper

    class JsonTextBinaryDumper(Dumper):
        """jsonb in the binary format from JSON that is already text (format version 1)."""

        format = pq.Format.BINARY
        oid = 3802  # jsonb

        def dump(self, obj: str) -> bytes:
            return b"\x01" + obj.encode()

    return JsonTextBinaryDumper


def insert_rows(model: type[Any], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert ``rows`` with one :class:`BulkInsert`."""
    with BulkInsert(model, columns) as insert:
        add = insert.add
        for row in rows:
            add(row)


@functools.cache
def _multi_row_insert(table: str, column_list: str, width: int, count: int) -> str:
    one = "(" + ", ".join(["?"] * width) + ")"
    # identifiers come from the model and are quoted; values are parameters
    return f"INSERT INTO {table} ({column_list}) VALUES " + ", ".join([one] * count)  # noqa: S608


def _max_query_params(connection: Any) -> int:
    # SQLite's limit is set when the library is compiled (32766 since 3.32, 999 before);
    # Django's feature flag assumes the old 999.
    try:
        import sqlite3

        limit = int(connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    except (AttributeError, TypeError, ValueError):
        limit = int(connection.features.max_query_params or 999)
    return min(limit, 32766)


def db_datetime() -> Callable[[dt.datetime | None, str | None], Any]:
    """How the database connection takes an aware datetime: as is on PostgreSQL, as Django's
    naive UTC text on SQLite. The adapter also takes the value's canonical text
    (:func:`~vetline.archive.leaves.timestamp_text`) when known, which holds the same digits."""
    from django.db import connection

    adapt = connection.ops.adapt_datetimefield_value
    if connection.vendor != "sqlite":

        def as_is(value: dt.datetime | None, text: str | None = None) -> Any:
            return adapt(value)

        return as_is

    def sqlite_datetime(value: dt.datetime | None, text: str | None = None) -> Any:
        # canonical "YYYY-MM-DDTHH:MM:SS.ffffffZ" -> str() of the naive UTC value, which leaves
        # out a zero fraction; years before 1000 are spelt differently, Django does those
        if text is not None and len(text) == 27 and text[0] != "0":
            if text[20:26] == "000000":
                return f"{text[:10]} {text[11:19]}"
            return f"{text[:10]} {text[11:26]}"
        if value is not None and value.tzinfo is dt.UTC:
            text = value.isoformat()  # str() of the naive value, with "T" and "+00:00"
            return f"{text[:10]} {text[11:-6]}"
        return adapt(value)

    return sqlite_datetime


def db_json(value: Any) -> str:
    """A JSON field's value as its column text, as Django's ``JSONField`` writes it
    (``json.dumps`` with its defaults); a list of strings without the generic encoder."""
    if type(value) is list:
        if not value:
            return "[]"
        try:
            return "[" + ", ".join(map(encode_basestring_ascii, value)) + "]"
        except TypeError:  # not a list of strings
            pass
    return json.dumps(value)
