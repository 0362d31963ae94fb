"""Reproducible sample selection. Plain Python + numpy, no ORM.

Procedure ``vetline-sample-v1`` (docs/supervision-sampling.md has it step by step, with a
standalone script that re-derives a sample from an export of the ids, without Vetline):

1. The population is the list ``P`` of its record ids, sorted ascending, without duplicates;
   ``N = len(P)``.
2. ``H = SHA-256(P[0] || P[1] || … || P[N-1])``, each id as an 8-byte big-endian signed integer
   (FIPS 180-4). ``H`` is recorded with the sample: it pins the exact population.
3. The seed ``S`` is 32 random bytes, recorded as 64 hex digits.
4. A byte stream: ``HMAC-SHA256(key=S, message="vetline-sample-v1" || H || b)`` for blocks
   ``b = 0, 1, 2, …`` one after the other (RFC 2104; ``H`` as its 32 raw bytes, ``b`` as 8
   bytes big-endian), read as 64-bit big-endian unsigned words: 4 words per block.
5. ``uniform(m)``, an integer in ``[0, m)``: take the next word ``u``; if ``u >= 2**64 - (2**64
   mod m)`` discard it and take the next (rejection, so every value is equally likely);
   otherwise return ``u mod m``.
6. A partial Fisher-Yates shuffle (Durstenfeld; Knuth, TAOCP vol. 2, 3.4.2, algorithm P) of the
   positions ``0 … N-1``: for ``j = 0 … n-1``, ``r = j + uniform(N - j)``, swap positions ``j``
   and ``r``; the sample is ``P[position j]`` for ``j = 0 … n-1``, in that order.

Only ``n`` positions are touched (a dict holds the swapped ones), so a draw costs about ``n / 4``
HMACs whatever the population's size; hashing the population is one pass over ``8 N`` bytes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import struct
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

from vetline.core.errors import ValidationFailed

PROCEDURE: Final = "vetline-sample-v1"
_LABEL: Final = PROCEDURE.encode()
_TWO_64: Final = 1 << 64
_FOUR_WORDS: Final = struct.Struct(">4Q")
_SEED: Final = re.compile(r"[0-9a-fA-F]{64}")

IdArray: TypeAlias = npt.NDArray[np.int64]
Population: TypeAlias = "IdArray | array[int] | Sequence[int]"


@dataclass(frozen=True, slots=True)
class Sample:
    """A drawn sample and what anyone needs to re-derive it."""

    ids: tuple[int, ...]  # in draw order
    seed: str  # 64 hex digits
    population_sha256: str  # hex
    population_size: int
    procedure: str = PROCEDURE

    def sorted_ids(self) -> list[int]:
        return sorted(self.ids)


def new_seed() -> str:
    """32 random bytes from the operating system, as 64 hex digits."""
    return secrets.token_hex(32)


def _seed_bytes(seed: str) -> bytes:
    if not isinstance(seed, str) or not _SEED.fullmatch(seed):
        raise ValidationFailed("A seed is 64 hexadecimal digits (32 bytes).", field="seed")
    return bytes.fromhex(seed)


def as_id_array(ids: Population) -> IdArray:
    """``ids`` as a 1-D int64 array, checked strictly increasing (sorted, no duplicates)."""
    try:
        if isinstance(ids, np.ndarray):
            arr = ids
        elif isinstance(ids, array):
            arr = np.frombuffer(ids, dtype=np.int64) if ids.typecode == "q" else np.array(ids)
        else:
            arr = np.fromiter(ids, dtype=np.int64, count=len(ids))
    except (TypeError, ValueError, OverflowError):
        raise ValidationFailed(
            "A population is a list of record ids (64-bit integers).", field="population"
        ) from None
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValidationFailed("A population is a flat list of record ids.", field="population")
    arr = arr.astype(np.int64, copy=False)
    if arr.size > 1 and not bool(np.all(arr[1:] > arr[:-1])):
        raise ValidationFailed(
            "A population's ids must be sorted ascending, without duplicates.",
            field="population",
        )
    return arr


def population_sha256(ids: Population) -> str:
    """SHA-256 (hex) over the ids as 8-byte big-endian signed integers, in order."""
    return _sha256(as_id_array(ids))


def _sha256(arr: IdArray) -> str:
    digest = hashlib.sha256()
    step = 1 << 17  # 1 MiB at a time, big-endian: no second full copy of a 10M population
    for start in range(0, arr.size, step):
        digest.update(arr[start : start + step].astype(">i8").data)  # its buffer: no copy
    return digest.hexdigest()


def _words(seed: bytes, population_digest: bytes) -> Iterator[int]:
    # HMAC (RFC 2104) with the pads hashed once: H(K^opad || H(K^ipad || message)). The same
    # bytes as hmac.digest(seed, message, "sha256"), a few times faster per word.
    key = seed.ljust(64, b"\0")  # seeds are 32 bytes: shorter than SHA-256's 64-byte block
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(_LABEL + population_digest)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    block = 0
    while True:
        i = inner.copy()
        i.update(block.to_bytes(8, "big"))
        o = outer.copy()
        o.update(i.digest())
        yield from _FOUR_WORDS.unpack(o.digest())
        block += 1


def _uniform(words: Iterator[int], m: int) -> int:
    limit = _TWO_64 - (_TWO_64 % m)
    while True:
        u = next(words)
        if u < limit:
            return u % m


def draw_positions(
    *, population_size: int, sample_size: int, seed: str, population_digest: str
) -> list[int]:
    """Positions (0-based, in draw order) into the sorted population: steps 4-6."""
    key = _seed_bytes(seed)
    words = _words(key, bytes.fromhex(population_digest))
    swapped: dict[int, int] = {}
    out: list[int] = []
    for j in range(sample_size):
        r = j + _uniform(words, population_size - j)
        out.append(swapped.get(r, r))
        swapped[r] = swapped.get(j, j)
    return out


def draw_sample(ids: Population, *, sample_size: int, seed: str) -> Sample:
    """Draw ``sample_size`` distinct ids from the sorted population ``ids`` (vetline-sample-v1)."""
    arr = as_id_array(ids)
    _seed_bytes(seed)
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 0:
        raise ValidationFailed("A sample size is a whole number, 0 or more.", field="sample_size")
    if sample_size > arr.size:
        raise ValidationFailed(
            f"Cannot draw {sample_size:,} records from a population of {arr.size:,}: "
            "lower the sample size or widen the population.",
            field="sample_size",
        )
    digest = _sha256(arr)
    positions = draw_positions(
        population_size=int(arr.size), sample_size=sample_size, seed=seed, population_digest=digest
    )
    chosen = arr[np.asarray(positions, dtype=np.int64)] if positions else arr[:0]
    return Sample(
        ids=tuple(int(x) for x in chosen.tolist()),
        seed=seed.lower(),
        population_sha256=digest,
        population_size=int(arr.size),
    )
