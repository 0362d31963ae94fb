"""Export manifest: the file an auditor checks with ``standalone_verifier.py`` (no Vetline needed).

Layout of an export directory::

    EXPORT_DIR/
      manifest.json           described below
      manifest.sig.json       Ed25519 signature over SHA-256(manifest.json bytes)
      standalone_verifier.py  (optional; listed in manifest.json like every other file)
      ...                     every exported file (RSMF, EML, CSV, HTML, attachments)

``manifest.json`` (UTF-8 JSON object; key order and spacing are free because the signature
covers the exact file bytes)::

    {
      "format": "vetline-export-manifest-v1",
      "created_at": "2025-01-31T12:00:00.000000Z",
      "hash_algorithm": "sha256",
      "tree_head": {                        # signed tree head, see integrity/sth.py
        "version": 1, "tree_size": N, "root_hash": HEX32, "timestamp_ms": MS,
        "key_id": HEX32, "signature": HEX64
      },
      "public_keys": [                      # key_id = SHA-256(public_key)
        {"algorithm": "ed25519", "key_id": HEX32, "public_key": HEX32}, ...
      ],
      "files": [                            # every file in EXPORT_DIR except manifest.json and
        {"path": "eml/0001.eml",            # manifest.sig.json; POSIX relative paths, no ".."
         "sha256": HEX32, "size": BYTES}, ...
      ],
      "records": [                          # one entry per exported log entry
        {"index": I,                        # the entry's position in the log
         "leaf_hash": HEX32,                # RFC 6962 leaf hash SHA-256(0x00 || leaf bytes)
         "leaf_bytes_b64": "...",           # optional: the canonical leaf bytes (base64); when
                                            # present they must hash to leaf_hash
         "inclusion_proof": [HEX32, ...],   # RFC 6962 PATH(I, D[tree_size]), leaf to root
         "files": ["eml/0001.eml", ...]}    # optional: exported files rendering this record
      ]
    }

``manifest.sig.json``::

    {"format": "vetline-export-manifest-signature-v1", "key_id": HEX32,
     "manifest_sha256": HEX32, "signature": HEX64}

where the signature is Ed25519 over
``b"vetline-manifest\\x00" || 0x01 || key_id || SHA-256(manifest.json)``.

HEXn is lowercase hex of n bytes. The writer streams: one file or record per line, so memory
stays flat however many records are exported.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final

from vetline.archive.integrity.canonical import format_timestamp
from vetline.archive.integrity.merkle import MerkleError, MerkleTree, leaf_hash
from vetline.archive.integrity.sth import LogSigner, SignedTreeHead, key_id_for

MANIFEST_FORMAT: Final = "vetline-export-manifest-v1"
SIGNATURE_FORMAT: Final = "vetline-export-manifest-signature-v1"
MANIFEST_NAME: Final = "manifest.json"
SIGNATURE_NAME: Final = "manifest.sig.json"
_CHUNK: Final = 1 << 20


class ManifestError(ValueError):
    """The manifest cannot be written as asked (head does not match the log, bad path...)."""


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    """One exported log entry. ``leaf_bytes`` is None when only the hash may be exported
    (a disposed record)."""

    index: int
    leaf_bytes: bytes | None
    files: Sequence[str] = ()


@dataclass
class ManifestSummary:
    manifest_sha256: bytes
    files: int = 0
    records: int = 0
    file_paths: list[str] = field(default_factory=list)


def sha256_file(path: Path) -> tuple[bytes, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.digest(), size


def _relative_files(export_dir: Path) -> list[str]:
    found: list[str] = []
    for root, dirs, names in os.walk(export_dir):
        dirs.sort()
        for name in sorted(names):
            rel = (Path(root) / name).relative_to(export_dir).as_posix()
            if rel not in (MANIFEST_NAME, SIGNATURE_NAME):
                found.append(rel)
    return sorted(found)


def _check_relpath(rel: str) -> None:
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or not rel or "\\" in rel:
        raise ManifestError(f"unsafe path in export: {rel!r}")


def _line(fh: IO[str], value: Any, last: bool) -> None:
    fh.write(json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")))
    fh.write("\n" if last else ",\n")


def write_manifest(
    export_dir: Path,
    *,
    tree: MerkleTree,
    tree_head: SignedTreeHead,
    signer: LogSigner,
    records: Iterable[ManifestRecord],
    public_keys: Iterable[bytes] = (),
    created_at: dt.datetime | None = None,
) -> ManifestSummary:
    """Hash every file in ``export_dir`` and write ``manifest.json`` + ``manifest.sig.json``.

    ``tree_head`` must be a head of ``tree`` (checked). Inclusion proofs are computed against
    it, so every record index must be below ``tree_head.tree_size``. ``public_keys`` adds keys
    beyond the signer's (e.g. the retired key that signed ``tree_head``).
    """
    export_dir = Path(export_dir)
    size = tree_head.tree_size
    try:
        actual_root = tree.root(size)
    except MerkleError as exc:
        raise ManifestError(f"the tree head is not a head of this log: {exc}") from exc
    if actual_root != tree_head.root_hash:
        raise ManifestError("the tree head's root is not the log's root at that size")

    keys: dict[bytes, bytes] = {signer.key_id: signer.public_key_bytes}
    for public in public_keys:
        keys[key_id_for(public)] = public
    if tree_head.key_id not in keys:
        raise ManifestError("the key that signed the tree head is not among the public keys")

    created = format_timestamp(created_at or dt.datetime.now(dt.UTC))
    files = _relative_files(export_dir)
    summary = ManifestSummary(manifest_sha256=b"", file_paths=files)
    listed = set(files)
    manifest_path = export_dir / MANIFEST_NAME
    with manifest_path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("{\n")
        fh.write(f'"format":{json.dumps(MANIFEST_FORMAT)},\n')
        fh.write(f'"created_at":{json.dumps(created)},\n')
        fh.write('"hash_algorithm":"sha256",\n')
        fh.write(f'"tree_head":{json.dumps(tree_head.to_dict(), sort_keys=True)},\n')
        key_list = [
            {"algorithm": "ed25519", "key_id": kid.hex(), "public_key": pub.hex()}
            for kid, pub in keys.items()
        ]
        fh.write(f'"public_keys":{json.dumps(key_list, sort_keys=True)},\n')
        fh.write('"files":[\n')
        for i, rel in enumerate(files):
            _check_relpath(rel)
            digest, nbytes = sha256_file(export_dir / rel)
            _line(fh, {"path": rel, "sha256": digest.hex(), "size": nbytes}, i == len(files) - 1)
            summary.files += 1
        fh.write('],\n"records":[\n')
        first = True
        for record in records:
            entry = _record_entry(tree, size, record, listed)
            if not first:
                fh.write(",\n")
            fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":")))
            first = False
            summary.records += 1
        fh.write("\n]\n}\n")

    digest, _ = sha256_file(manifest_path)
    summary.manifest_sha256 = digest
    signature = {
        "format": SIGNATURE_FORMAT,
        "key_id": signer.key_id.hex(),
        "manifest_sha256": digest.hex(),
        "signature": signer.sign_manifest_digest(digest).hex(),
    }
    (export_dir / SIGNATURE_NAME).write_text(
        json.dumps(signature, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return summary


def _record_entry(
    tree: MerkleTree, size: int, record: ManifestRecord, listed: set[str]
) -> dict[str, Any]:
    if not 0 <= record.index < size:
        raise ManifestError(f"record index {record.index} is not covered by the tree head")
    stored = tree.store.leaf_hash(record.index)
    entry: dict[str, Any] = {
        "index": record.index,
        "leaf_hash": stored.hex(),
        "inclusion_proof": [p.hex() for p in tree.inclusion_proof(record.index, size)],
    }
    if record.leaf_bytes is not None:
        if leaf_hash(record.leaf_bytes) != stored:
            raise ManifestError(f"the leaf bytes of record {record.index} do not match the log")
        entry["leaf_bytes_b64"] = base64.b64encode(record.leaf_bytes).decode("ascii")
    if record.files:
        for rel in record.files:
            if rel not in listed:
                raise ManifestError(f"record {record.index} names a file not in the export: {rel}")
        entry["files"] = list(record.files)
    return entry
