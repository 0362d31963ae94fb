"""The standalone verifier's pure-Python Ed25519 (RFC 8032) against the RFC and `cryptography`."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from vetline.archive.standalone_verifier import ed25519_verify

# RFC 8032 §7.1, TEST 1, 2, 3 and SHA(abc)
RFC8032_VECTORS = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032_VECTORS)
def test_rfc8032_vectors(secret: str, public: str, message: str, signature: str) -> None:
    pk, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert ed25519_verify(pk, msg, sig)
    # the vectors are also what `cryptography` derives and signs (deterministic signatures)
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
    assert _raw_public(key) == pk
    assert key.sign(msg) == sig
    # any change fails
    assert not ed25519_verify(pk, msg + b"x", sig)
    bad = bytearray(sig)
    bad[0] ^= 1
    assert not ed25519_verify(pk, msg, bytes(bad))
    bad = bytearray(sig)
    bad[40] ^= 1
    assert not ed25519_verify(pk, msg, bytes(bad))
    bad_pk = bytearray(pk)
    bad_pk[3] ^= 1
    assert not ed25519_verify(bytes(bad_pk), msg, sig)


def test_malformed_inputs_are_rejected() -> None:
    _secret, public, _message, signature = RFC8032_VECTORS[0]
    pk, sig = bytes.fromhex(public), bytes.fromhex(signature)
    assert not ed25519_verify(pk[:31], b"", sig)
    assert not ed25519_verify(pk, b"", sig[:63])
    # S >= L (non-canonical scalar) is rejected
    big_s = int.from_bytes(sig[32:], "little") + 2**252 + 27742317777372353535851937790883648493
    assert not ed25519_verify(pk, b"", sig[:32] + (big_s % 2**256).to_bytes(32, "little"))
    # a y coordinate >= p cannot be decoded
    assert not ed25519_verify(b"\xff" * 31 + b"\x7f", b"", sig)


KEYS = [Ed25519PrivateKey.generate() for _ in range(3)]


@settings(max_examples=25, deadline=None)
@given(message=st.binary(max_size=300), which=st.integers(0, 2), flip=st.integers(0, 63))
def test_agrees_with_cryptography(message: bytes, which: int, flip: int) -> None:
    key = KEYS[which]
    sig = key.sign(message)
    pk = _raw_public(key)
    assert ed25519_verify(pk, message, sig)
    bad = bytearray(sig)
    bad[flip] ^= 0x80
    assert not ed25519_verify(pk, message, bytes(bad))
    assert not ed25519_verify(_raw_public(KEYS[(which + 1) % 3]), message, sig)
