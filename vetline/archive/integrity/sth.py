"""Signed tree heads (STH): Ed25519 signatures over the log's size and root.

Signed payload, version 1 (93 bytes, integers big-endian)::

    offset  size  field
    0       12    magic  b"vetline-sth\\x00"
    12      1     version = 1
    13      32    key_id  = SHA-256(raw 32-byte Ed25519 public key)
    45      8     timestamp_ms (milliseconds since 1970-01-01T00:00:00Z, unsigned)
    53      8     tree_size (unsigned)
    61      32    root_hash (RFC 6962 MTH of the first tree_size leaves)

The signature is plain Ed25519 (RFC 8032, no prehash, no context) over those bytes.

Export manifests are signed with the same key over a different, domain-separated payload::

    b"vetline-manifest\\x00" || version(1 byte, 1) || key_id(32) || SHA-256(manifest.json)(32)

Key generation and rotation
---------------------------
* ``LogSigner.generate()`` makes a new key; keep ``private_pem()`` secret (encrypt it with a
  password or keep it in the credential vault). Publish ``key_id`` and ``public_key_bytes``.
* Every tree head names the key id that signed it; :class:`Keyring` holds every public key that
  ever signed (retired keys are kept so old heads still verify) and picks the key by id.
* To rotate: generate a new key, have the *old* key sign a :class:`KeyTransition` naming the new
  public key (``old.sign_key_transition(new.public_key_bytes)``), store and publish the statement,
  then sign new heads with the new key. An auditor who trusts only the first key can follow the
  chain of transitions with ``Keyring.accept_transition``.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

STH_MAGIC: Final = b"vetline-sth\x00"
STH_VERSION: Final = 1
MANIFEST_MAGIC: Final = b"vetline-manifest\x00"
MANIFEST_SIGNATURE_VERSION: Final = 1
TRANSITION_MAGIC: Final = b"vetline-key-transition\x00"
TRANSITION_VERSION: Final = 1
_U64_MAX: Final = 2**64 - 1


class SignatureError(ValueError):
    """Malformed signed object (wrong lengths, bad encoding)."""


def key_id_for(public_key_bytes: bytes) -> bytes:
    """Key id: SHA-256 of the raw 32-byte Ed25519 public key."""
    if len(public_key_bytes) != 32:
        raise SignatureError("an Ed25519 public key is 32 bytes")
    return hashlib.sha256(public_key_bytes).digest()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def tree_head_payload(
    *,
    tree_size: int,
    root_hash: bytes,
    timestamp_ms: int,
    key_id: bytes,
    version: int = STH_VERSION,
) -> bytes:
    """The exact bytes an STH signature covers (see the module docstring)."""
    if len(root_hash) != 32 or len(key_id) != 32:
        raise SignatureError("root hash and key id are 32 bytes each")
    if not (0 <= tree_size <= _U64_MAX and 0 <= timestamp_ms <= _U64_MAX and 0 <= version < 256):
        raise SignatureError("tree size / timestamp / version out of range")
    return (
        STH_MAGIC
        + bytes([version])
        + key_id
        + struct.pack(">QQ", timestamp_ms, tree_size)
        + root_hash
    )


def manifest_payload(*, key_id: bytes, manifest_sha256: bytes) -> bytes:
    if len(key_id) != 32 or len(manifest_sha256) != 32:
        raise SignatureError("key id and digest are 32 bytes each")
    return MANIFEST_MAGIC + bytes([MANIFEST_SIGNATURE_VERSION]) + key_id + manifest_sha256


def transition_payload(
    *,
    old_key_id: bytes,
    new_public_key: bytes,
    timestamp_ms: int,
    version: int = TRANSITION_VERSION,
) -> bytes:
    return (
        TRANSITION_MAGIC
        + bytes([version])
        + old_key_id
        + key_id_for(new_public_key)
        + struct.pack(">Q", timestamp_ms)
        + new_public_key
    )


def _hex32(data: Mapping[str, Any], key: str, size: int = 32) -> bytes:
    value = data.get(key)
    if not isinstance(value, str):
        raise SignatureError(f"{key} must be a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise SignatureError(f"{key} is not hex") from exc
    if len(raw) != size:
        raise SignatureError(f"{key} must be {size} bytes")
    return raw


def _uint(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _U64_MAX:
        raise SignatureError(f"{key} must be an unsigned 64-bit integer")
    return value


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    key_id: bytes
    signature: bytes
    version: int = STH_VERSION

    def signed_payload(self) -> bytes:
        return tree_head_payload(
            tree_size=self.tree_size,
            root_hash=self.root_hash,
            timestamp_ms=self.timestamp_ms,
            key_id=self.key_id,
            version=self.version,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp_ms": self.timestamp_ms,
            "key_id": self.key_id.hex(),
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignedTreeHead:
        version = data.get("version")
        if version != STH_VERSION:
            raise SignatureError(f"unsupported tree head version {version!r}")
        return cls(
            tree_size=_uint(data, "tree_size"),
            root_hash=_hex32(data, "root_hash"),
            timestamp_ms=_uint(data, "timestamp_ms"),
            key_id=_hex32(data, "key_id"),
            signature=_hex32(data, "signature", 64),
            version=version,
        )


@dataclass(frozen=True, slots=True)
class KeyTransition:
    """Statement, signed by the old key, that the new public key takes over."""

    old_key_id: bytes
    new_public_key: bytes
    timestamp_ms: int
    signature: bytes

    @property
    def new_key_id(self) -> bytes:
        return key_id_for(self.new_public_key)

    def signed_payload(self) -> bytes:
        return transition_payload(
            old_key_id=self.old_key_id,
            new_public_key=self.new_public_key,
            timestamp_ms=self.timestamp_ms,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": TRANSITION_VERSION,
            "old_key_id": self.old_key_id.hex(),
            "new_public_key": self.new_public_key.hex(),
            "new_key_id": self.new_key_id.hex(),
            "timestamp_ms": self.timestamp_ms,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeyTransition:
        if data.get("version") != TRANSITION_VERSION:
            raise SignatureError("unsupported key transition version")
        return cls(
            old_key_id=_hex32(data, "old_key_id"),
            new_public_key=_hex32(data, "new_public_key"),
            timestamp_ms=_uint(data, "timestamp_ms"),
            signature=_hex32(data, "signature", 64),
        )


class LogSigner:
    """An Ed25519 private key that signs tree heads, export manifests and key transitions."""

    __slots__ = ("_private", "key_id", "public_key_bytes")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key_bytes: bytes = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id: bytes = key_id_for(self.public_key_bytes)

    @classmethod
    def generate(cls) -> LogSigner:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> LogSigner:
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def from_pem(cls, pem: bytes, password: bytes | None = None) -> LogSigner:
        key = serialization.load_pem_private_key(pem, password=password)
        if not isinstance(key, Ed25519PrivateKey):
            raise SignatureError("the PEM does not hold an Ed25519 private key")
        return cls(key)

    def private_pem(self, password: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def sign(self, payload: bytes) -> bytes:
        return self._private.sign(payload)

    def sign_tree_head(
        self, *, tree_size: int, root_hash: bytes, timestamp_ms: int | None = None
    ) -> SignedTreeHead:
        ts = now_ms() if timestamp_ms is None else timestamp_ms
        payload = tree_head_payload(
            tree_size=tree_size, root_hash=root_hash, timestamp_ms=ts, key_id=self.key_id
        )
        return SignedTreeHead(tree_size, root_hash, ts, self.key_id, self.sign(payload))

    def sign_manifest_digest(self, manifest_sha256: bytes) -> bytes:
        return self.sign(manifest_payload(key_id=self.key_id, manifest_sha256=manifest_sha256))

    def sign_key_transition(
        self, new_public_key: bytes, timestamp_ms: int | None = None
    ) -> KeyTransition:
        ts = now_ms() if timestamp_ms is None else timestamp_ms
        payload = transition_payload(
            old_key_id=self.key_id, new_public_key=new_public_key, timestamp_ms=ts
        )
        return KeyTransition(self.key_id, new_public_key, ts, self.sign(payload))


class HeadCheck(StrEnum):
    OK = "ok"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"


def verify_ed25519(public_key_bytes: bytes, signature: bytes, payload: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key_bytes).verify(signature, payload)
    except (InvalidSignature, ValueError):
        return False
    return True


class Keyring:
    """Trusted public keys by key id (current and retired)."""

    def __init__(self, public_keys: Iterable[bytes] = ()) -> None:
        self._keys: dict[bytes, bytes] = {}
        for key in public_keys:
            self.add(key)

    def add(self, public_key_bytes: bytes) -> bytes:
        key_id = key_id_for(public_key_bytes)
        self._keys[key_id] = bytes(public_key_bytes)
        return key_id

    def get(self, key_id: bytes) -> bytes | None:
        return self._keys.get(key_id)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def check_tree_head(self, sth: SignedTreeHead) -> HeadCheck:
        public = self._keys.get(sth.key_id)
        if public is None:
            return HeadCheck.UNKNOWN_KEY
        try:
            payload = sth.signed_payload()
        except SignatureError:
            return HeadCheck.BAD_SIGNATURE
        if not verify_ed25519(public, sth.signature, payload):
            return HeadCheck.BAD_SIGNATURE
        return HeadCheck.OK

    def verify_tree_head(self, sth: SignedTreeHead) -> bool:
        return self.check_tree_head(sth) is HeadCheck.OK

    def verify_manifest_signature(
        self, *, key_id: bytes, manifest_sha256: bytes, signature: bytes
    ) -> bool:
        public = self._keys.get(key_id)
        if public is None:
            return False
        payload = manifest_payload(key_id=key_id, manifest_sha256=manifest_sha256)
        return verify_ed25519(public, signature, payload)

    def accept_transition(self, statement: KeyTransition) -> bytes:
        """Trust the new key named by ``statement`` if a trusted key signed it; returns its id."""
        old = self._keys.get(statement.old_key_id)
        if old is None:
            raise SignatureError("the key transition is signed by a key that is not trusted")
        if not verify_ed25519(old, statement.signature, statement.signed_payload()):
            raise SignatureError("the key transition signature does not verify")
        return self.add(statement.new_public_key)

    def to_list(self) -> list[dict[str, str]]:
        return [
            {"algorithm": "ed25519", "key_id": key_id.hex(), "public_key": public.hex()}
            for key_id, public in self._keys.items()
        ]
