"""Signed tree heads: exact payload bytes, signing, verification by key id, rotation."""

from __future__ import annotations

import hashlib
import struct

import pytest

from vetline.archive.integrity.sth import (
    HeadCheck,
    Keyring,
    KeyTransition,
    LogSigner,
    SignatureError,
    SignedTreeHead,
    key_id_for,
    tree_head_payload,
)
from vetline.archive.standalone_verifier import ed25519_verify


def test_payload_layout_is_exact() -> None:
    root = bytes(range(32))
    key_id = b"\xaa" * 32
    payload = tree_head_payload(tree_size=7, root_hash=root, timestamp_ms=1234, key_id=key_id)
    assert len(payload) == 93
    assert payload == b"vetline-sth\x00" + b"\x01" + key_id + struct.pack(">QQ", 1234, 7) + root


def test_sign_and_verify_roundtrip() -> None:
    signer = LogSigner.generate()
    assert signer.key_id == hashlib.sha256(signer.public_key_bytes).digest()
    head = signer.sign_tree_head(tree_size=10, root_hash=b"\x05" * 32, timestamp_ms=99)
    keyring = Keyring([signer.public_key_bytes])
    assert keyring.check_tree_head(head) is HeadCheck.OK
    again = SignedTreeHead.from_dict(head.to_dict())
    assert again == head
    # the pure-Python verifier accepts what `cryptography` signed
    assert ed25519_verify(signer.public_key_bytes, head.signed_payload(), head.signature)


@pytest.mark.parametrize(
    "change",
    [
        {"tree_size": 11},
        {"root_hash": b"\x06" * 32},
        {"timestamp_ms": 100},
        {"signature": b"\x00" * 64},
    ],
)
def test_any_field_change_breaks_the_signature(change: dict[str, object]) -> None:
    signer = LogSigner.generate()
    head = signer.sign_tree_head(tree_size=10, root_hash=b"\x05" * 32, timestamp_ms=99)
    data = {
        **head.to_dict(),
        **{k: v.hex() if isinstance(v, bytes) else v for k, v in change.items()},
    }
    forged = SignedTreeHead.from_dict(data)
    assert Keyring([signer.public_key_bytes]).check_tree_head(forged) is HeadCheck.BAD_SIGNATURE


def test_unknown_key_and_rotation() -> None:
    old, new = LogSigner.generate(), LogSigner.generate()
    old_head = old.sign_tree_head(tree_size=1, root_hash=b"\x01" * 32, timestamp_ms=1)
    new_head = new.sign_tree_head(tree_size=2, root_hash=b"\x02" * 32, timestamp_ms=2)
    keyring = Keyring([old.public_key_bytes])
    assert keyring.check_tree_head(new_head) is HeadCheck.UNKNOWN_KEY
    statement = old.sign_key_transition(new.public_key_bytes, timestamp_ms=2)
    assert keyring.accept_transition(KeyTransition.from_dict(statement.to_dict())) == new.key_id
    assert keyring.verify_tree_head(new_head)
    assert keyring.verify_tree_head(old_head)  # retired keys keep verifying old heads
    # a transition not signed by a trusted key is refused
    rogue = LogSigner.generate()
    other = Keyring([old.public_key_bytes])
    with pytest.raises(SignatureError):
        other.accept_transition(rogue.sign_key_transition(rogue.public_key_bytes))
    # a transition whose named key was swapped is refused
    swapped = KeyTransition(
        statement.old_key_id, rogue.public_key_bytes, statement.timestamp_ms, statement.signature
    )
    with pytest.raises(SignatureError):
        other.accept_transition(swapped)


def test_private_key_serialisation() -> None:
    signer = LogSigner.generate()
    again = LogSigner.from_pem(signer.private_pem(b"secret"), b"secret")
    assert again.key_id == signer.key_id
    assert LogSigner.from_pem(signer.private_pem()).key_id == signer.key_id


def test_malformed_heads_are_refused() -> None:
    with pytest.raises(SignatureError):
        key_id_for(b"short")
    with pytest.raises(SignatureError):
        SignedTreeHead.from_dict({"version": 2})
    with pytest.raises(SignatureError):
        SignedTreeHead.from_dict(
            {
                "version": 1,
                "tree_size": -1,
                "root_hash": "00" * 32,
                "timestamp_ms": 0,
                "key_id": "00" * 32,
                "signature": "00" * 64,
            }
        )
