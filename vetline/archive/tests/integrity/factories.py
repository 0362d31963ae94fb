"""Builders shared by the integrity tests: a small log of canonical records with signed heads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from vetline.archive.integrity.canonical import record_leaf_bytes
from vetline.archive.integrity.merkle import MerkleTree, leaf_hash
from vetline.archive.integrity.sth import Keyring, LogSigner, SignedTreeHead

BASE_TIME = dt.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def record_fields(i: int) -> dict[str, object]:
    return {
        "network": "x",
        "account": "@vetline_bank",
        "remote_id": f"17{i:08d}",
        "version": 1,
        "kind": "post" if i % 3 else "reply",
        "direction": "outbound" if i % 2 else "inbound",
        "author": f"user{i % 7}",
        "participants": [f"user{i % 7}", "@vetline_bank"],
        "text": f"Message {i}: rates are what they are — café ☕",
        "attachments": [],
        "raw_payload_sha256": f"{i:064x}",
        "network_created_at": BASE_TIME + dt.timedelta(seconds=i),
        "captured_at": BASE_TIME + dt.timedelta(seconds=i, milliseconds=250),
        "adopted": None,
        "approval_id": None,
    }


@dataclass
class BuiltLog:
    signer: LogSigner
    keyring: Keyring
    tree: MerkleTree
    leaves: list[bytes]
    hashes: list[bytes]
    heads: list[SignedTreeHead] = field(default_factory=list)

    def entries(self) -> list[tuple[int, bytes, bytes]]:
        return [(i, self.leaves[i], self.hashes[i]) for i in range(len(self.leaves))]


def build_log(n: int, head_every: int = 5, signer: LogSigner | None = None) -> BuiltLog:
    signer = signer or LogSigner.generate()
    tree = MerkleTree()
    leaves = [record_leaf_bytes(record_fields(i)) for i in range(n)]
    log = BuiltLog(signer, Keyring([signer.public_key_bytes]), tree, leaves, [])
    for i, data in enumerate(leaves):
        tree.append(data)
        log.hashes.append(leaf_hash(data))
        if (i + 1) % head_every == 0 or i + 1 == n:
            log.heads.append(
                signer.sign_tree_head(
                    tree_size=i + 1, root_hash=tree.root(), timestamp_ms=1_700_000_000_000 + i
                )
            )
    return log
