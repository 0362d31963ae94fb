"""Integrity log benchmark: inclusion proofs and full recomputation at 10 million leaves.

    python bench/integrity_bench.py [--records N] [--proofs K] [--canonical-sample M]
                                    [--output bench/results/integrity.json]

Measures, in one run and on the same generated canonical leaf bytes (~400 bytes each):

* baseline: plain ``hashlib.sha256(data)`` over every leaf (the floor for any hashing verifier);
* recompute: RFC 6962 leaf hashes + tree head of the whole log (streaming, O(log n) memory),
  reported with its overhead ratio against the baseline;
* verify_log: the full verification routine (leaf hash check against stored hashes, ordering,
  signed tree heads every 100,000 entries, Ed25519 signature checks) with the canonical-form
  check off, plus the canonical-form check's cost per leaf measured on a sample;
* inclusion proofs: p50/p95/max over random leaves of an in-memory cached-subtree store
  (O(log n) lookups), and the same proofs' verification time;
* consistency proofs between random sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vetline.archive.integrity.canonical import parse_leaf, record_leaf_bytes
from vetline.archive.integrity.merkle import (
    InMemoryHashStore,
    MerkleTree,
    StreamingTreeHasher,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from vetline.archive.integrity.sth import Keyring, LogSigner
from vetline.archive.integrity.verify import verify_log

CHUNK = 65536
PLACEHOLDER = "9999999999"


def _template() -> tuple[bytes, bytes]:
    fields = {
        "network": "linkedin",
        "account": "urn:li:organization:1234567",
        "remote_id": f"urn:li:share:{PLACEHOLDER}",
        "version": 1,
        "kind": "comment",
        "direction": "inbound",
        "author": "urn:li:person:abcdefgh",
        "participants": ["urn:li:person:abcdefgh", "urn:li:organization:1234567"],
        "conversation_id": "urn:li:share:7000000000",
        "thread_id": "urn:li:share:7000000000",
        "parent": None,
        "text": "Thanks for the update on savings rates — when will the new terms apply?",
        "attachments": [],
        "raw_payload_sha256": "ab" * 32,
        "network_created_at": "2025-01-02T03:04:05.000000Z",
        "captured_at": "2025-01-02T03:04:06.250000Z",
        "adopted": False,
        "approval_id": None,
        "record_class": "communications",
    }
    data = record_leaf_bytes(fields)
    before, after = data.split(PLACEHOLDER.encode())
    return before, after


def leaves(n: int) -> Iterator[list[bytes]]:
    before, after = _template()
    for start in range(0, n, CHUNK):
        yield [before + b"%010d" % i + after for i in range(start, min(n, start + CHUNK))]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench(n: int, proofs: int, canonical_sample: int) -> dict[str, object]:
    results: dict[str, object] = {"records": n}

    t0 = time.perf_counter()
    generated = 0
    for chunk in leaves(n):
        generated += len(chunk)
    gen_s = time.perf_counter() - t0
    results["generate_s"] = round(gen_s, 3)

    import hashlib

    sha = hashlib.sha256
    t0 = time.perf_counter()
    for chunk in leaves(n):
        for data in chunk:
            sha(data).digest()
    baseline_s = time.perf_counter() - t0
    results["baseline_sha256_s"] = round(baseline_s, 3)

    hashes = bytearray()
    hasher = StreamingTreeHasher()
    t0 = time.perf_counter()
    for chunk in leaves(n):
        batch = [leaf_hash(d) for d in chunk]
        hasher.extend(batch)
        hashes += b"".join(batch)
    root = hasher.root()
    recompute_s = time.perf_counter() - t0
    results["recompute_root_s"] = round(recompute_s, 3)
    results["recompute_overhead_ratio"] = round(recompute_s / baseline_s, 3)
    results["recompute_excluding_generation_ratio"] = round(
        max(recompute_s - gen_s, 1e-9) / max(baseline_s - gen_s, 1e-9), 3
    )
    print(f"[{n}] baseline {baseline_s:.1f}s, recompute {recompute_s:.1f}s", flush=True)

    # full verification routine, signed heads every 100k entries
    signer = LogSigner.generate()
    keyring = Keyring([signer.public_key_bytes])
    store = InMemoryHashStore()
    t0 = time.perf_counter()
    hash_list = [bytes(hashes[i * 32 : (i + 1) * 32]) for i in range(n)]
    store.extend(hash_list)
    build_s = time.perf_counter() - t0
    results["build_cached_subtree_store_s"] = round(build_s, 3)
    tree = MerkleTree(store)
    assert tree.root() == root
    head_every = 100_000
    heads = [
        signer.sign_tree_head(tree_size=s, root_hash=tree.root(s), timestamp_ms=s)
        for s in [*range(head_every, n, head_every), n]
    ]

    def entries() -> Iterator[tuple[int, bytes, bytes]]:
        index = 0
        for chunk in leaves(n):
            for data in chunk:
                yield index, data, hash_list[index]
                index += 1

    t0 = time.perf_counter()
    report = verify_log(entries(), heads, keyring, check_canonical=False)
    verify_s = time.perf_counter() - t0
    assert report.ok, report.render_text()
    results["verify_log_s"] = round(verify_s, 3)
    results["verify_log_heads"] = len(heads)
    results["verify_log_overhead_ratio"] = round(verify_s / baseline_s, 3)
    print(f"[{n}] verify_log {verify_s:.1f}s ({len(heads)} heads)", flush=True)

    sample = min(n, canonical_sample)
    taken = 0
    t0 = time.perf_counter()
    for chunk in leaves(sample):
        for data in chunk:
            parse_leaf(data)
            taken += 1
    canonical_per_leaf = (time.perf_counter() - t0 - gen_s * sample / n) / max(taken, 1)
    results["canonical_check_us_per_leaf"] = round(canonical_per_leaf * 1e6, 3)
    results["verify_log_with_canonical_check_estimated_s"] = round(
        verify_s + canonical_per_leaf * n, 1
    )

    rng = random.Random(6962)
    proof_times: list[float] = []
    verify_times: list[float] = []
    for _ in range(proofs):
        index = rng.randrange(n)
        t0 = time.perf_counter()
        proof = tree.inclusion_proof(index)
        proof_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ok = verify_inclusion(hash_list[index], index, n, proof, root)
        verify_times.append(time.perf_counter() - t0)
        assert ok
    ms = 1000.0
    results["inclusion_proof_ms"] = {
        "p50": round(statistics.median(proof_times) * ms, 4),
        "p95": round(percentile(proof_times, 0.95) * ms, 4),
        "max": round(max(proof_times) * ms, 4),
        "samples": proofs,
    }
    results["inclusion_verify_ms"] = {
        "p50": round(statistics.median(verify_times) * ms, 4),
        "p95": round(percentile(verify_times, 0.95) * ms, 4),
    }
    cons: list[float] = []
    for _ in range(max(1, proofs // 10)):
        old = rng.randrange(1, n + 1)
        t0 = time.perf_counter()
        proof = tree.consistency_proof(old)
        cons.append(time.perf_counter() - t0)
        assert verify_consistency(old, n, tree.root(old), root, proof)
    results["consistency_proof_ms"] = {
        "p50": round(statistics.median(cons) * ms, 4),
        "p95": round(percentile(cons, 0.95) * ms, 4),
    }
    results["targets"] = {
        "inclusion_proof_p95_le_5ms": results["inclusion_proof_ms"]["p95"] <= 5.0,  # type: ignore[index]
        "full_recompute_le_120s": recompute_s <= 120.0,
        "verify_log_le_120s": verify_s <= 120.0,
    }
    print(json.dumps(results, indent=2), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, action="append", help="log size (repeatable)")
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--canonical-sample", type=int, default=200_000)
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "integrity.json"
    )
    args = parser.parse_args()
    sizes = args.records or [10_000_000]
    runs = [bench(n, args.proofs, args.canonical_sample) for n in sizes]
    output = {
        "benchmark": "integrity",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(output, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
