"""The integrity log in the database: appending leaves, the :class:`HashStore` over the tables,
proofs, tree heads, and the entries :func:`verify_log` recomputes.

Appends are serialised by locking the single :class:`LogState` row (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite's IMMEDIATE transactions already serialise writers). The state keeps the log's
right-edge *frontier* (the complete subtrees whose fold is the root), so appending a batch reads
nothing but that row, and the root is known at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from django.conf import settings
from django.db import transaction

from vetline.archive.integrity.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
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
        self._nodes: list[LogNode] = []

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
                self._nodes.append(
                    LogNode(
                        key=node_key(level, node_index), level=level, index=node_index, hash=value
                    )
                )
        return index

    def root(self) -> bytes:
        return fold_subtrees(self._stack)

    def finish(self) -> None:
        if self._nodes:
            LogNode.objects.bulk_create(self._nodes)
            self._nodes = []
        if self.size != self.start:
            from django.utils import timezone

            LogState.objects.filter(pk=1).update(
                size=self.size, frontier=b"".join(self._stack), updated_at=timezone.now()
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


@dataclass
class EntrySource:
    """Streams ``(index, canonical bytes or None, stored leaf hash)`` in index order, rebuilding
    each leaf's canonical bytes from the row it logs. Remembers what each index refers to."""

    chunk: int = 5000
    leaf_objects: dict[int, tuple[int, int]] = field(default_factory=dict)  # index -> (kind, id)
    payload_mismatch: set[int] = field(default_factory=set)
    relinked: dict[int, int] = field(default_factory=dict)  # index -> record id at that index

    def __iter__(self) -> Iterator[tuple[int, bytes | None, bytes]]:
        from vetline.archive.integrity.canonical import TOMBSTONE_PREFIX
        from vetline.archive.leaves import audit_leaf_from_row, record_leaf_from_row
        from vetline.archive.models import ArchivedRecord, DisposalRecord
        from vetline.archive.retention import disposal_leaf_from_row
        from vetline.audit.models import AuditEvent

        last = -1
        while True:
            leaves = list(
                LogLeaf.objects.filter(index__gt=last)
                .order_by("index")
                .values_list("index", "leaf_hash", "kind", "object_id")[: self.chunk]
            )
            if not leaves:
                return
            last = leaves[-1][0]
            lo = leaves[0][0]
            records = {
                r.log_index: r
                for r in ArchivedRecord.objects.filter(log_index__gte=lo, log_index__lte=last)
            }
            audit_ids = [oid for _, _, kind, oid in leaves if kind == LeafKind.AUDIT_EVENT]
            events = (
                {e.id: e for e in AuditEvent.objects.filter(id__in=audit_ids)} if audit_ids else {}
            )
            disposal_ids = [oid for _, _, kind, oid in leaves if kind == LeafKind.DISPOSAL]
            disposals = (
                {d.id: d for d in DisposalRecord.objects.filter(id__in=disposal_ids)}
                if disposal_ids
                else {}
            )
            for index, stored, kind, object_id in leaves:
                self.leaf_objects[index] = (kind, object_id)
                data: bytes | None = None
                if kind == LeafKind.RECORD:
                    record = records.get(index)
                    if record is not None:
                        if record.pk != object_id:
                            self.relinked[index] = record.pk
                        payload = bytes(record.raw_payload)
                        if payload.startswith(TOMBSTONE_PREFIX):
                            # disposed: the verifier checks the tombstone and its disposal leaf
                            data = payload
                        else:
                            digest = hashlib.sha256(payload).hexdigest()
                            if digest != record.raw_payload_sha256:
                                self.payload_mismatch.add(index)
                            data = record_leaf_from_row(record, payload_sha256=digest)
                elif kind == LeafKind.AUDIT_EVENT:
                    event = events.get(object_id)
                    if event is not None:
                        data = audit_leaf_from_row(event)
                elif kind == LeafKind.DISPOSAL:
                    disposal = disposals.get(object_id)
                    if disposal is not None:
                        data = disposal_leaf_from_row(disposal)
                yield index, data, bytes(stored)


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


def fast_insert(model: type[Any], objs: Sequence[Any], fields: Sequence[str]) -> None:
    """INSERT many rows with one prepared statement (``executemany``), without Django's
    per-row SQL compilation, which costs far more than the database's own work at ingest rates.
    Values are adapted as Django would adapt them; primary keys are not read back."""
    from django.db import connection

    if not objs:
        return
    meta = model._meta
    concrete = [meta.get_field(name) for name in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in concrete)
    marks = ", ".join(["%s"] * len(concrete))
    table = connection.ops.quote_name(meta.db_table)
    # identifiers come from the model and are quoted; values are parameters
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
    adapters: list[Any] = []
    for f in concrete:
        internal = f.get_internal_type()
        if internal == "DateTimeField":
            adapters.append(connection.ops.adapt_datetimefield_value)
        elif internal == "JSONField":
            adapters.append(lambda v, _f=f: _f.get_db_prep_save(v, connection))
        else:
            adapters.append(None)
    attnames = [f.attname for f in concrete]
    rows = []
    for obj in objs:
        row = []
        for attname, adapt in zip(attnames, adapters, strict=True):
            value = getattr(obj, attname)
            row.append(adapt(value) if adapt is not None and value is not None else value)
        rows.append(row)
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
