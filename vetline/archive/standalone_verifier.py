#!/usr/bin/env python3
"""Vetline export verifier: checks an export package with nothing but Python 3.9+ (stdlib only).

Usage::

    python3 standalone_verifier.py EXPORT_DIR [--trusted-key-id HEX ...] [--quiet]

Exit status: 0 when everything holds, 1 when any check fails, 2 when the package cannot be read.

What it checks
--------------
1. ``manifest.sig.json``: an Ed25519 signature (RFC 8032, implemented below in pure Python)
   over the exact bytes of ``manifest.json`` by a key listed in the manifest.
2. Every file listed in ``manifest.json`` exists and has the listed SHA-256 and size; no file in
   the directory is missing from the list (an unlisted file would not be covered).
3. The signed tree head: its Ed25519 signature by the key its ``key_id`` names, and that
   ``key_id`` is SHA-256 of that public key. With ``--trusted-key-id`` the key must also be one
   the auditor obtained independently (for example from the firm's compliance officer); without
   it the report says the key is only self-asserted by the package.
4. Every record: its canonical leaf bytes (when present) hash to its leaf hash
   (SHA-256(0x00 || bytes), RFC 6962) and its inclusion proof leads to the signed root
   (RFC 9162 §2.1.3.2).

Manifest format (version ``vetline-export-manifest-v1``)
--------------------------------------------------------
Export directory::

    EXPORT_DIR/manifest.json, EXPORT_DIR/manifest.sig.json, and the exported files.

``manifest.json`` is a UTF-8 JSON object::

    {
      "format": "vetline-export-manifest-v1",
      "created_at": "YYYY-MM-DDTHH:MM:SS.ffffffZ",
      "hash_algorithm": "sha256",
      "tree_head": {"version": 1, "tree_size": N, "root_hash": HEX32,
                    "timestamp_ms": MS, "key_id": HEX32, "signature": HEX64},
      "public_keys": [{"algorithm": "ed25519", "key_id": HEX32, "public_key": HEX32}, ...],
      "files": [{"path": "relative/posix/path", "sha256": HEX32, "size": BYTES}, ...],
      "records": [{"index": I, "leaf_hash": HEX32, "leaf_bytes_b64": "...(optional)",
                   "inclusion_proof": [HEX32, ...], "files": ["relative/path", ...]}, ...]
    }

``files`` lists every file in EXPORT_DIR except manifest.json and manifest.sig.json.

``manifest.sig.json``::

    {"format": "vetline-export-manifest-signature-v1", "key_id": HEX32,
     "manifest_sha256": HEX32, "signature": HEX64}

Signed payloads (Ed25519, no prehash, integers big-endian):

* tree head (93 bytes): ``b"vetline-sth\\x00" || 0x01 || key_id(32) || timestamp_ms(u64)
  || tree_size(u64) || root_hash(32)``
* manifest: ``b"vetline-manifest\\x00" || 0x01 || key_id(32) || SHA-256(manifest.json)(32)``

Canonical leaf bytes are ``b"vetline-leaf-v1 " + TYPE + b"\\n" + canonical JSON`` (sorted keys,
no whitespace, UTF-8); a record's text, timestamps and payload hash are inside them, so a
verified record is exactly what was logged.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import struct
import sys
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST_FORMAT = "vetline-export-manifest-v1"
SIGNATURE_FORMAT = "vetline-export-manifest-signature-v1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig.json"

# --------------------------------------------------------------------------- Ed25519 (RFC 8032)
# Verification only, following the reference code of RFC 8032 §6 (extended coordinates).

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)

Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)


def _point_add(a: Point, b: Point) -> Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    pa = (y1 - x1) * (y2 - x2) % _P
    pb = (y1 + x1) * (y2 + x2) % _P
    pc = 2 * t1 * t2 * _D % _P
    pd = 2 * z1 * z2 % _P
    e, f, g, h = pb - pa, pd - pc, pd + pc, pb + pa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _point_mul(s: int, point: Point) -> Point:
    result = (0, 1, 1, 0)  # neutral element
    while s > 0:
        if s & 1:
            result = _point_add(result, point)
        point = _point_add(point, point)
        s >>= 1
    return result


def _point_equal(a: Point, b: Point) -> bool:
    x1, y1, z1, _ = a
    x2, y2, z2, _ = b
    return (x1 * z2 - x2 * z1) % _P == 0 and (y1 * z2 - y2 * z1) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _decompress(data: bytes) -> Point | None:
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
assert _GX is not None
_G = (_GX, _GY, 1, _GX * _GY % _P)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 §5.1.7 verification ([S]B = R + [k]A)."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decompress(public_key)
    if a is None:
        return False
    r_bytes = signature[:32]
    r = _decompress(r_bytes)
    if r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(r_bytes + public_key + message).digest(), "little") % _L
    return bool(_point_equal(_point_mul(s, _G), _point_add(r, _point_mul(k, a))))


# --------------------------------------------------------------------------- RFC 6962 / 9162


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: list[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0 or len(p) != 32:
            return False
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def tree_head_payload(head: dict[str, Any], key_id: bytes, root: bytes) -> bytes:
    return (
        b"vetline-sth\x00"
        + bytes([head["version"]])
        + key_id
        + struct.pack(">QQ", head["timestamp_ms"], head["tree_size"])
        + root
    )


def manifest_payload(key_id: bytes, manifest_sha256: bytes) -> bytes:
    return b"vetline-manifest\x00" + b"\x01" + key_id + manifest_sha256


# --------------------------------------------------------------------------- checks


class PackageError(Exception):
    """The package cannot be read at all."""


def _hex(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{what} is not hex") from None
    if len(raw) != size:
        raise ValueError(f"{what} is not {size} bytes")
    return raw


def _sha256_file(path: Path) -> tuple[bytes, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    return digest.digest(), size


def _safe_relpath(rel: object) -> bool:
    if not isinstance(rel, str) or not rel or "\\" in rel:
        return False
    pure = PurePosixPath(rel)
    return not pure.is_absolute() and ".." not in pure.parts


class Report:
    def __init__(self, quiet: bool = False) -> None:
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.quiet = quiet

    def ok(self, message: str) -> None:
        if not self.quiet:
            print(f"  OK    {message}")

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"  FAIL  {message}")

    def note(self, message: str) -> None:
        self.notes.append(message)
        print(f"  NOTE  {message}")


def verify_package(export_dir: Path, trusted_key_ids: list[str], quiet: bool = False) -> Report:
    report = Report(quiet)
    manifest_path = export_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise PackageError(f"{manifest_path} not found")
    try:
        manifest_bytes = manifest_path.read_bytes()
        manifest = json.loads(manifest_bytes.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PackageError(f"manifest.json cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise PackageError(f"manifest.json is not a {MANIFEST_FORMAT} manifest")
    manifest_digest = hashlib.sha256(manifest_bytes).digest()

    print(f"Export: {export_dir}")
    print(f"manifest.json SHA-256: {manifest_digest.hex()}")

    # keys
    print("Keys")
    keys: dict[bytes, bytes] = {}
    for entry in manifest.get("public_keys") or []:
        try:
            public = _hex(entry.get("public_key"), 32, "public_key")
            claimed = _hex(entry.get("key_id"), 32, "key_id")
        except (ValueError, AttributeError) as exc:
            report.fail(f"public key entry unreadable: {exc}")
            continue
        if entry.get("algorithm") != "ed25519":
            report.fail(f"key {claimed.hex()} is not an ed25519 key")
            continue
        if hashlib.sha256(public).digest() != claimed:
            report.fail(f"key id {claimed.hex()} is not SHA-256 of its public key")
            continue
        keys[claimed] = public
        trusted = claimed.hex() in trusted_key_ids
        report.ok(
            f"key {claimed.hex()}" + (" (trusted: matches --trusted-key-id)" if trusted else "")
        )
    if not keys:
        report.fail("the manifest lists no usable public key")

    # manifest signature
    print("Manifest signature")
    sig_path = export_dir / SIGNATURE_NAME
    try:
        sig = json.loads(sig_path.read_text(encoding="utf-8"))
        if sig.get("format") != SIGNATURE_FORMAT:
            raise ValueError("unknown signature format")
        sig_key = _hex(sig.get("key_id"), 32, "key_id")
        sig_value = _hex(sig.get("signature"), 64, "signature")
        sig_digest = _hex(sig.get("manifest_sha256"), 32, "manifest_sha256")
    except (OSError, ValueError, AttributeError) as exc:
        report.fail(f"{SIGNATURE_NAME} missing or unreadable: {exc}")
    else:
        if sig_digest != manifest_digest:
            report.fail(
                "manifest.json was modified after it was signed "
                f"(signed SHA-256 {sig_digest.hex()}, actual {manifest_digest.hex()})"
            )
        elif sig_key not in keys:
            report.fail(f"manifest signed by key {sig_key.hex()}, which the manifest does not list")
        elif not ed25519_verify(
            keys[sig_key], manifest_payload(sig_key, manifest_digest), sig_value
        ):
            report.fail("the manifest signature does not verify: manifest.json was altered")
        else:
            report.ok(f"manifest.json signed by key {sig_key.hex()}")

    # files
    files = manifest.get("files") or []
    print(f"Files ({len(files)} listed)")
    listed: set[str] = set()
    bad_files = 0
    for entry in files:
        rel = entry.get("path") if isinstance(entry, dict) else None
        if not _safe_relpath(rel):
            report.fail(f"unsafe or missing path in the file list: {rel!r}")
            bad_files += 1
            continue
        assert isinstance(rel, str)
        listed.add(rel)
        path = export_dir / rel
        if not path.is_file():
            report.fail(f"{rel}: listed in the manifest but missing from the export")
            bad_files += 1
            continue
        try:
            expected = _hex(entry.get("sha256"), 32, "sha256")
        except ValueError as exc:
            report.fail(f"{rel}: {exc}")
            bad_files += 1
            continue
        digest, size = _sha256_file(path)
        if digest != expected:
            report.fail(
                f"{rel}: SHA-256 mismatch, the file was modified "
                f"(manifest {expected.hex()}, file {digest.hex()})"
            )
            bad_files += 1
        elif size != entry.get("size"):
            report.fail(f"{rel}: size {size} differs from the manifest's {entry.get('size')}")
            bad_files += 1
    for dirpath, _dirs, names in os.walk(export_dir):
        for name in names:
            rel = (Path(dirpath) / name).relative_to(export_dir).as_posix()
            if rel not in listed and rel not in (MANIFEST_NAME, SIGNATURE_NAME):
                report.fail(f"{rel}: present in the export but not listed in the manifest")
                bad_files += 1
    if not bad_files:
        report.ok(f"all {len(files)} files match their SHA-256")

    # tree head
    print("Signed tree head")
    head = manifest.get("tree_head")
    root: bytes | None = None
    tree_size = -1
    try:
        if not isinstance(head, dict) or head.get("version") != 1:
            raise ValueError("missing or unsupported tree head")
        head_key = _hex(head.get("key_id"), 32, "tree_head.key_id")
        root_candidate = _hex(head.get("root_hash"), 32, "tree_head.root_hash")
        head_sig = _hex(head.get("signature"), 64, "tree_head.signature")
        for field in ("tree_size", "timestamp_ms"):
            value = head.get(field)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**64:
                raise ValueError(f"tree_head.{field} is not an unsigned 64-bit integer")
    except ValueError as exc:
        report.fail(f"tree head unreadable: {exc}")
    else:
        if head_key not in keys:
            report.fail(
                f"tree head signed by key {head_key.hex()}, which the manifest does not list"
            )
        elif not ed25519_verify(
            keys[head_key], tree_head_payload(head, head_key, root_candidate), head_sig
        ):
            report.fail("tree head signature does not verify: the tree head was forged or altered")
        else:
            root = root_candidate
            tree_size = head["tree_size"]
            report.ok(
                f"tree size {tree_size}, root {root.hex()}, signed at {head['timestamp_ms']} ms "
                f"by key {head_key.hex()}"
            )
            if trusted_key_ids and head_key.hex() not in trusted_key_ids:
                report.fail(
                    f"the tree head key {head_key.hex()} is not one of the --trusted-key-id keys"
                )
            elif not trusted_key_ids:
                report.note(
                    "the signing key comes from the package itself; compare its key id with the "
                    "one published by the firm, or pass --trusted-key-id"
                )

    # records
    records = manifest.get("records") or []
    print(f"Records ({len(records)})")
    bad_records = 0
    for position, entry in enumerate(records):
        label = f"record #{position}"
        try:
            index = entry["index"]
            label = f"record at log index {index}"
            if not isinstance(index, int) or isinstance(index, bool):
                raise ValueError("index is not an integer")
            stored = _hex(entry.get("leaf_hash"), 32, "leaf_hash")
            proof = [_hex(p, 32, "proof element") for p in entry.get("inclusion_proof", [])]
            if "leaf_bytes_b64" in entry:
                data = base64.b64decode(entry["leaf_bytes_b64"], validate=True)
                if leaf_hash(data) != stored:
                    report.fail(f"{label}: its leaf bytes do not hash to its leaf hash (modified)")
                    bad_records += 1
                    continue
            for rel in entry.get("files", []):
                if rel not in listed:
                    raise ValueError(f"names a file that is not listed: {rel}")
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
            report.fail(f"{label}: unreadable entry: {exc}")
            bad_records += 1
            continue
        if root is None:
            bad_records += 1
            continue
        if not verify_inclusion(stored, index, tree_size, proof, root):
            report.fail(f"{label}: its inclusion proof does not lead to the signed root")
            bad_records += 1
    if root is None and records:
        report.fail("no record can be proven: there is no valid signed tree head")
    elif not bad_records:
        report.ok(f"all {len(records)} records are in the signed log (inclusion proofs verify)")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Vetline export package.")
    parser.add_argument("export_dir", type=Path)
    parser.add_argument(
        "--trusted-key-id",
        action="append",
        default=[],
        help="hex key id obtained independently from the firm (repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="print failures and the result only")
    args = parser.parse_args(argv)
    trusted = [k.strip().lower() for k in args.trusted_key_id]
    try:
        report = verify_package(args.export_dir, trusted, quiet=args.quiet)
    except PackageError as exc:
        print(f"ERROR: {exc}")
        print("RESULT: CANNOT VERIFY")
        return 2
    print()
    if report.failures:
        print(f"RESULT: FAILED ({len(report.failures)} problem(s)):")
        for failure in report.failures:
            print(f"  - {failure}")
        return 1
    print("RESULT: VERIFIED. Every file, record, proof and signature holds.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
