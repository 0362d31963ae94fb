"""RFC 6962 Merkle tree: tree heads, inclusion and consistency proofs, and their verifiers.

Hashing follows RFC 6962 §2.1 exactly (SHA-256):

* leaf hash  = SHA-256(0x00 || leaf bytes)
* node hash  = SHA-256(0x01 || left || right)
* MTH({})    = SHA-256("")
* for n > 1, k is the largest power of two strictly smaller than n and
  MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n])).

Proof *generation* follows RFC 6962 §2.1.1 (PATH) and §2.1.2 (PROOF / SUBPROOF); proof
*verification* follows the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2.

Scale. A log is kept in a :class:`HashStore`: the leaf hashes plus the hash of every *complete*
(perfect) subtree, addressed by ``(level, index)``: the subtree at ``(level, index)`` covers the
leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 is the leaf hash itself. Such a
subtree never changes once complete, so it can be cached forever in an append-only table. Every
range hash needed by RFC 6962 proofs is the right fold of at most ``log2(n)`` such perfect
subtrees, so an inclusion or consistency proof costs O(log n) lookups. The nodes a proof needs
can be computed up front (:func:`inclusion_proof_plan`) so a database backend can fetch them in a
single query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256

# One reference to a complete subtree: (level, index); covers [index << level, (index+1) << level).
NodeRef = tuple[int, int]
# One proof element is the right fold of one or more complete subtrees (left to right).
ProofElementPlan = tuple[NodeRef, ...]


class MerkleError(ValueError):
    """A request that the tree cannot answer (index or size out of range)."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The RFC 6962 split: the largest power of two strictly smaller than ``n`` (n >= 2)."""
    if n < 2:
        raise MerkleError(f"no split point for a tree of size {n}")
    return 1 << ((n - 1).bit_length() - 1)


# --------------------------------------------------------------------------- storage protocol


@runtime_checkable
class HashStore(Protocol):
    """Append-only storage of leaf hashes and complete-subtree hashes.

    The in-memory implementation is :class:`InMemoryHashStore`; the Django side implements the same
    four methods over database tables (one row per leaf hash, one row per complete subtree).
    """

    def size(self) -> int:
        """Number of leaves stored."""
        ...

    def leaf_hash(self, index: int) -> bytes:
        """Hash of leaf ``index`` (same as ``subtree_hash(0, index)``)."""
        ...

    def subtree_hash(self, level: int, index: int) -> bytes:
        """Hash of the complete subtree of ``2**level`` leaves starting at ``index << level``."""
        ...

    def append(self, leaf_hash: bytes, completed: Sequence[tuple[int, int, bytes]]) -> None:
        """Append one leaf hash and the complete subtrees (level >= 1) that it closes.

        ``completed`` is what :func:`completed_subtrees` returns; it must be stored atomically
        with the leaf hash.
        """
        ...


def completed_subtrees(store: HashStore, new_leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
    """The complete subtrees (level >= 1) closed by appending ``new_leaf_hash`` to ``store``.

    Amortised O(1) lookups (one per trailing one-bit of the current size).
    """
    n = store.size() + 1  # size after the append
    result: list[tuple[int, int, bytes]] = []
    current = new_leaf_hash
    level = 0
    index = n - 1
    while index & 1:  # the node at (level, index) is a right child: its parent is now complete
        left = store.subtree_hash(level, index - 1)
        current = node_hash(left, current)
        level += 1
        index >>= 1
        result.append((level, index, current))
    return result


class InMemoryHashStore:
    """:class:`HashStore` kept in one ``bytearray`` per level (32 bytes per node).

    Ten million leaves take about 640 MB (the leaves plus every complete subtree).
    """

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]

    def size(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    def leaf_hash(self, index: int) -> bytes:
        return self.subtree_hash(0, index)

    def subtree_hash(self, level: int, index: int) -> bytes:
        if level < 0 or index < 0 or level >= len(self._levels):
            raise MerkleError(f"no complete subtree at level {level}, index {index}")
        start = index * HASH_SIZE
        value = bytes(self._levels[level][start : start + HASH_SIZE])
        if len(value) != HASH_SIZE:
            raise MerkleError(f"no complete subtree at level {level}, index {index}")
        return value

    def append(self, leaf_hash: bytes, completed: Sequence[tuple[int, int, bytes]]) -> None:
        if len(leaf_hash) != HASH_SIZE:
            raise MerkleError("a leaf hash is 32 bytes")
        self._levels[0] += leaf_hash
        for level, index, value in completed:
            while len(self._levels) <= level:
                self._levels.append(bytearray())
            if len(self._levels[level]) != index * HASH_SIZE:
                raise MerkleError(f"subtree ({level}, {index}) appended out of order")
            self._levels[level] += value

    def extend(self, leaf_hashes: Sequence[bytes]) -> None:
        """Bulk append (fast path): appends the leaves, then builds every newly complete level."""
        for h in leaf_hashes:
            if len(h) != HASH_SIZE:
                raise MerkleError("a leaf hash is 32 bytes")
        self._levels[0] += b"".join(leaf_hashes)
        level = 0
        while True:
            below = self._levels[level]
            complete_parents = len(below) // (2 * HASH_SIZE)
            if level + 1 >= len(self._levels):
                if complete_parents == 0:
                    break
                self._levels.append(bytearray())
            above = self._levels[level + 1]
            have = len(above) // HASH_SIZE
            if have == complete_parents:
                break
            mv = memoryview(below)
            prefix = NODE_PREFIX
            sha = _sha256
            step = 2 * HASH_SIZE
            above += b"".join(
                [
                    sha(prefix + mv[i : i + step]).digest()
                    for i in range(have * step, complete_parents * step, step)
                ]
            )
            mv.release()
            level += 1

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: Sequence[bytes]) -> InMemoryHashStore:
        store = cls()
        store.extend(leaf_hashes)
        return store


# --------------------------------------------------------------------------- range hashing


def range_decomposition(start: int, end: int) -> ProofElementPlan:
    """The complete subtrees (left to right) whose right fold is MTH(D[start:end]).

    Valid for every range that occurs in the RFC 6962 recursion (``start`` is a multiple of a power
    of two that is at least ``end - start``), which covers every range a proof needs.
    """
    refs: list[NodeRef] = []
    while start < end:
        width = end - start
        level = width.bit_length() - 1  # largest power of two <= width
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        refs.append((level, start >> level))
        start += 1 << level
    return tuple(refs)


def fold_subtrees(hashes: Sequence[bytes]) -> bytes:
    """Right fold of complete-subtree hashes: node(h0, node(h1, ... node(h_{k-2}, h_{k-1})))."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_proof_plan(index: int, tree_size: int) -> list[ProofElementPlan]:
    """Which complete subtrees make up each element of PATH(index, D[tree_size]) (RFC 6962 §2.1.1).

    Returned leaf-to-root, the order of the proof itself.
    """
    if not 0 <= index < tree_size:
        raise MerkleError(f"leaf index {index} is outside a tree of size {tree_size}")
    plan: list[ProofElementPlan] = []
    start, end, m = 0, tree_size, index
    while end - start > 1:
        k = split_point(end - start)
        if m < k:
            plan.append(range_decomposition(start + k, end))
            end = start + k
        else:
            plan.append(range_decomposition(start, start + k))
            start, m = start + k, m - k
    plan.reverse()
    return plan


def consistency_proof_plan(old_size: int, new_size: int) -> list[ProofElementPlan]:
    """Complete subtrees for each element of PROOF(old_size, D[new_size]) (RFC 6962 §2.1.2)."""
    if not 0 <= old_size <= new_size:
        raise MerkleError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    plan: list[ProofElementPlan] = []
    start, end, m, complete = 0, new_size, old_size, True
    # SUBPROOF(m, D[start:end], complete)
    while True:
        n = end - start
        if m == n:
            if not complete:
                plan.append(range_decomposition(start, end))
            break
        k = split_point(n)
        if m <= k:
            plan.append(range_decomposition(start + k, end))
            end = start + k
        else:
            plan.append(range_decomposition(start, start + k))
            start, m, complete = start + k, m - k, False
    plan.reverse()
    return plan


# --------------------------------------------------------------------------- tree over a store


class MerkleTree:
    """An append-only RFC 6962 log over a :class:`HashStore`."""

    __slots__ = ("store",)

    def __init__(self, store: HashStore | None = None) -> None:
        self.store: HashStore = store if store is not None else InMemoryHashStore()

    @property
    def size(self) -> int:
        return self.store.size()

    def append(self, data: bytes) -> int:
        """Append a leaf (its canonical bytes); returns its index."""
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, value: bytes) -> int:
        if len(value) != HASH_SIZE:
            raise MerkleError("a leaf hash is 32 bytes")
        index = self.store.size()
        self.store.append(value, completed_subtrees(self.store, value))
        return index

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append many leaves (canonical bytes)."""
        hashes = [leaf_hash(d) for d in leaves]
        if isinstance(self.store, InMemoryHashStore):
            self.store.extend(hashes)
        else:
            for h in hashes:
                self.append_leaf_hash(h)

    def _check_size(self, tree_size: int | None) -> int:
        current = self.store.size()
        if tree_size is None:
            return current
        if not 0 <= tree_size <= current:
            raise MerkleError(f"tree size {tree_size} is outside 0..{current}")
        return tree_size

    def _resolve(self, element: ProofElementPlan) -> bytes:
        return fold_subtrees([self.store.subtree_hash(level, idx) for level, idx in element])

    def root(self, tree_size: int | None = None) -> bytes:
        """MTH of the first ``tree_size`` leaves (default: all). O(log n) lookups."""
        size = self._check_size(tree_size)
        return self._resolve(range_decomposition(0, size))

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> list[bytes]:
        """PATH(index, D[tree_size]) — RFC 6962 §2.1.1, leaf-to-root."""
        size = self._check_size(tree_size)
        return [self._resolve(e) for e in inclusion_proof_plan(index, size)]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[new_size]) — RFC 6962 §2.1.2."""
        size = self._check_size(new_size)
        return [self._resolve(e) for e in consistency_proof_plan(old_size, size)]


# --------------------------------------------------------------------------- streaming root


class StreamingTreeHasher:
    """Computes MTH over a stream of leaf hashes in O(log n) memory (a "compact range").

    ``root()`` gives the tree head of the leaves pushed so far at any moment, so a verifier can
    check every signed tree head during one pass over the log.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._stack: list[bytes] = []  # complete subtrees, largest first (bits of size, MSB first)
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def push(self, value: bytes) -> None:
        stack = self._stack
        stack.append(value)
        self._size += 1
        m = self._size
        while not m & 1:
            right = stack.pop()
            stack[-1] = _sha256(NODE_PREFIX + stack[-1] + right).digest()
            m >>= 1

    def extend(self, values: Sequence[bytes]) -> None:
        """Push many leaf hashes; hashes aligned blocks level by level (faster than ``push``)."""
        i, n = 0, len(values)
        sha = _sha256
        prefix = NODE_PREFIX
        while i < n:
            remaining = n - i
            level = min(remaining.bit_length() - 1, 16)
            if self._size:
                level = min(level, (self._size & -self._size).bit_length() - 1)
            if level == 0:
                self.push(values[i])
                i += 1
                continue
            layer = list(values[i : i + (1 << level)])
            while len(layer) > 1:
                pairs = zip(layer[0::2], layer[1::2], strict=True)
                layer = [sha(prefix + a + b).digest() for a, b in pairs]
            self._push_subtree(level, layer[0])
            i += 1 << level

    def _push_subtree(self, level: int, value: bytes) -> None:
        stack = self._stack
        stack.append(value)
        self._size += 1 << level
        m = self._size >> level
        while not m & 1:
            right = stack.pop()
            stack[-1] = _sha256(NODE_PREFIX + stack[-1] + right).digest()
            m >>= 1

    def root(self) -> bytes:
        return fold_subtrees(self._stack)


def root_from_leaf_hashes(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over an iterable of leaf hashes, in one streaming pass."""
    hasher = StreamingTreeHasher()
    batch: list[bytes] = []
    for h in leaf_hashes:
        batch.append(h)
        if len(batch) == 65536:
            hasher.extend(batch)
            batch = []
    hasher.extend(batch)
    return hasher.root()


# --------------------------------------------------------------------------- verifiers


def verify_inclusion(
    leaf_hash_value: bytes,
    index: int,
    tree_size: int,
    proof: Sequence[bytes],
    root: bytes,
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show leaf ``index`` with this hash is in the tree?"""
    if not 0 <= index < tree_size:
        return False
    if any(len(p) != HASH_SIZE for p in proof) or len(leaf_hash_value) != HASH_SIZE:
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash_value
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _sha256(NODE_PREFIX + p + r).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(NODE_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def root_from_inclusion_proof(
    leaf_hash_value: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes | None:
    """The root implied by an inclusion proof, or ``None`` when the proof has the wrong shape."""
    if not 0 <= index < tree_size:
        return None
    fn, sn = index, tree_size - 1
    r = leaf_hash_value
    for p in proof:
        if sn == 0 or len(p) != HASH_SIZE:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """RFC 9162 §2.1.4.2: does ``proof`` show the tree of ``old_size`` is a prefix of the new one?

    Edge cases the RFC leaves to the caller: equal sizes need an empty proof and equal roots; an
    empty old tree is consistent with anything (empty proof, ``old_root`` must be MTH({})).
    """
    if not 0 <= old_size <= new_size:
        return False
    if any(len(p) != HASH_SIZE for p in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # exact power of two
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _sha256(NODE_PREFIX + c + fr).digest()
            sr = _sha256(NODE_PREFIX + c + sr).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(NODE_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
