"""RFC 6962 tree heads and proofs, checked against a naive recursive implementation."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vetline.archive.integrity.merkle import (
    EMPTY_ROOT,
    InMemoryHashStore,
    MerkleError,
    MerkleTree,
    StreamingTreeHasher,
    completed_subtrees,
    consistency_proof_plan,
    inclusion_proof_plan,
    leaf_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)


# ---- naive RFC 6962 §2.1 definitions, written straight from the RFC text
def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def naive_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + d[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return _h(b"\x01" + naive_mth(d[:k]) + naive_mth(d[k:]))


def naive_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*naive_path(m, d[:k]), naive_mth(d[k:])]
    return [*naive_path(m - k, d[k:]), naive_mth(d[:k])]


def naive_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [naive_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*naive_subproof(m, d[:k], b), naive_mth(d[k:])]
    return [*naive_subproof(m - k, d[k:], False), naive_mth(d[:k])]


def naive_proof(m: int, d: list[bytes]) -> list[bytes]:
    return naive_subproof(m, d, True)


def data_for(n: int) -> list[bytes]:
    return [f"leaf-{i}".encode() for i in range(n)]


def tree_for(data: list[bytes]) -> MerkleTree:
    tree = MerkleTree()
    for d in data:
        tree.append(d)
    return tree


# ---- the RFC 6962 reference vectors used by certificate-transparency's own tests
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_reference_roots() -> None:
    tree = tree_for(CT_LEAVES)
    assert tree.root(0) == EMPTY_ROOT == _h(b"")
    for size, expected in enumerate(CT_ROOTS, start=1):
        assert tree.root(size).hex() == expected
        assert naive_mth(CT_LEAVES[:size]).hex() == expected


def test_hash_domains() -> None:
    assert leaf_hash(b"abc") == _h(b"\x00abc")
    # a leaf can never be confused with an interior node of the same bytes
    assert leaf_hash(b"\x01" + b"a" * 64) != _h(b"\x01" + b"a" * 64)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(min_value=0, max_value=140))
def test_roots_match_naive_for_every_prefix(n: int) -> None:
    data = data_for(n)
    tree = tree_for(data)
    bulk = MerkleTree(InMemoryHashStore.from_leaf_hashes([leaf_hash(d) for d in data]))
    assert tree.root() == naive_mth(data) == bulk.root()
    assert root_from_leaf_hashes(leaf_hash(d) for d in data) == naive_mth(data)
    for m in range(0, n + 1, max(1, n // 10)):
        assert tree.root(m) == naive_mth(data[:m]) == bulk.root(m)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_inclusion_proofs_match_rfc_and_verify(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=300))
    m = data.draw(st.integers(min_value=0, max_value=n - 1))
    size = data.draw(st.integers(min_value=m + 1, max_value=n))
    leaves = data_for(n)
    tree = tree_for(leaves)
    proof = tree.inclusion_proof(m, size)
    assert proof == naive_path(m, leaves[:size])
    assert len(proof) == len(inclusion_proof_plan(m, size))
    root = tree.root(size)
    assert verify_inclusion(leaf_hash(leaves[m]), m, size, proof, root)
    assert root_from_inclusion_proof(leaf_hash(leaves[m]), m, size, proof) == root


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_consistency_proofs_match_rfc_and_verify(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=300))
    new = data.draw(st.integers(min_value=1, max_value=n))
    old = data.draw(st.integers(min_value=1, max_value=new))
    leaves = data_for(n)
    tree = tree_for(leaves)
    proof = tree.consistency_proof(old, new)
    assert proof == (naive_proof(old, leaves[:new]) if old < new else [])
    assert len(proof) == len(consistency_proof_plan(old, new))
    assert verify_consistency(old, new, tree.root(old), tree.root(new), proof)


def _mutations(proof: list[bytes], draw_index: int, byte_pos: int) -> list[list[bytes]]:
    mutated: list[list[bytes]] = []
    if proof:
        i = draw_index % len(proof)
        flipped = bytearray(proof[i])
        flipped[byte_pos % 32] ^= 0x01
        mutated.append([*proof[:i], bytes(flipped), *proof[i + 1 :]])
        mutated.append(proof[:i] + proof[i + 1 :])  # dropped element
        if len(proof) > 1 and proof[i] != proof[(i + 1) % len(proof)]:
            swapped = list(proof)
            j = (i + 1) % len(proof)
            swapped[i], swapped[j] = swapped[j], swapped[i]
            mutated.append(swapped)
    mutated.append([*proof, b"\x00" * 32])  # extra element
    mutated.append([b"\x11" * 32, *proof])  # extra element in front
    return mutated


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_mutated_inclusion_proofs_fail(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=200))
    m = data.draw(st.integers(min_value=0, max_value=n - 1))
    leaves = data_for(n)
    tree = tree_for(leaves)
    root = tree.root()
    proof = tree.inclusion_proof(m)
    lh = leaf_hash(leaves[m])
    for bad in _mutations(proof, data.draw(st.integers(0, 99)), data.draw(st.integers(0, 31))):
        assert not verify_inclusion(lh, m, n, bad, root)
    # wrong leaf, index, size, root
    assert not verify_inclusion(leaf_hash(b"other"), m, n, proof, root)
    other_index = data.draw(st.integers(min_value=0, max_value=n + 3).filter(lambda i: i != m))
    assert not verify_inclusion(lh, other_index, n, proof, root)
    # The size is bound by the root: the proof holds for no other (size, root of that size).
    # (With the *same* root, a different size of the same path shape can pass; that is why the
    # size is signed together with the root in the tree head.)
    big = tree_for(data_for(2 * n + 2))
    other_size = data.draw(
        st.integers(min_value=m + 1, max_value=2 * n + 2).filter(lambda s: s != n)
    )
    assert not verify_inclusion(lh, m, other_size, proof, big.root(other_size))
    assert not verify_inclusion(lh, m, n, proof, b"\x00" * 32)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_mutated_consistency_proofs_fail(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=2, max_value=200))
    old = data.draw(st.integers(min_value=1, max_value=n - 1))
    leaves = data_for(n)
    tree = tree_for(leaves)
    old_root, new_root = tree.root(old), tree.root()
    proof = tree.consistency_proof(old)
    for bad in _mutations(proof, data.draw(st.integers(0, 99)), data.draw(st.integers(0, 31))):
        assert not verify_consistency(old, n, old_root, new_root, bad)
    assert not verify_consistency(old, n, b"\x00" * 32, new_root, proof)
    assert not verify_consistency(old, n, old_root, b"\x00" * 32, proof)
    big = tree_for(data_for(2 * n))
    other_old = data.draw(st.integers(min_value=1, max_value=n).filter(lambda s: s != old))
    assert not verify_consistency(other_old, n, big.root(other_old), new_root, proof)
    other_new = data.draw(st.integers(min_value=old + 1, max_value=2 * n).filter(lambda s: s != n))
    assert not verify_consistency(old, other_new, old_root, big.root(other_new), proof)
    # a rewritten history: same size, one leaf changed, must not be consistent
    i = data.draw(st.integers(min_value=0, max_value=old - 1))
    forged = list(leaves)
    forged[i] = b"forged"
    forged_root = tree_for(forged[:old]).root()
    assert not verify_consistency(old, n, forged_root, new_root, proof)


def test_consistency_edge_cases() -> None:
    tree = tree_for(data_for(8))
    root = tree.root()
    assert tree.consistency_proof(8) == []
    assert verify_consistency(8, 8, root, root, [])
    assert not verify_consistency(8, 8, root, b"\x00" * 32, [])
    assert not verify_consistency(8, 8, root, root, [root])
    assert verify_consistency(0, 8, EMPTY_ROOT, root, [])
    assert not verify_consistency(5, 3, root, root, [root])
    assert not verify_consistency(3, 8, tree.root(3), root, [])
    with pytest.raises(MerkleError):
        tree.consistency_proof(9)
    with pytest.raises(MerkleError):
        tree.inclusion_proof(8)


def test_store_subtrees_are_cached_per_level() -> None:
    data = data_for(13)
    tree = tree_for(data)
    store = tree.store
    assert store.size() == 13
    # perfect subtree (level 2, index 1) covers leaves 4..7
    assert store.subtree_hash(2, 1) == naive_mth(data[4:8])
    assert store.subtree_hash(3, 0) == naive_mth(data[0:8])
    with pytest.raises(MerkleError):
        store.subtree_hash(3, 1)  # leaves 8..15: not complete yet
    assert completed_subtrees(store, leaf_hash(b"x")) == [
        (1, 6, _h(b"\x01" + store.leaf_hash(12) + leaf_hash(b"x")))
    ]


class CountingStore(InMemoryHashStore):
    lookups = 0

    def subtree_hash(self, level: int, index: int) -> bytes:
        CountingStore.lookups += 1
        return super().subtree_hash(level, index)


def test_proofs_cost_logarithmic_lookups() -> None:
    n = 100_003
    store = CountingStore.from_leaf_hashes([leaf_hash(i.to_bytes(4, "big")) for i in range(n)])
    tree = MerkleTree(store)
    for index in (0, 1, 65_535, 65_536, 99_999, n - 1):
        CountingStore.lookups = 0
        tree.inclusion_proof(index)
        assert CountingStore.lookups <= 2 * n.bit_length()
    CountingStore.lookups = 0
    tree.consistency_proof(77_777)
    assert CountingStore.lookups <= 3 * n.bit_length()


@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(st.integers(min_value=0, max_value=70), max_size=8))
def test_streaming_hasher_any_chunking(chunks: list[int]) -> None:
    total = sum(chunks)
    hashes = [leaf_hash(d) for d in data_for(total)]
    hasher = StreamingTreeHasher()
    pos = 0
    for c in chunks:
        hasher.extend(hashes[pos : pos + c])
        pos += c
        assert hasher.size == pos
        assert hasher.root() == naive_mth(data_for(pos))


def test_bulk_and_incremental_stores_agree() -> None:
    hashes = [leaf_hash(d) for d in data_for(77)]
    a = InMemoryHashStore()
    a.extend(hashes[:30])
    a.extend(hashes[30:])
    b = MerkleTree()
    for h in hashes:
        b.append_leaf_hash(h)
    for level in range(7):
        for index in range(77 >> level):
            assert a.subtree_hash(level, index) == b.store.subtree_hash(level, index)
