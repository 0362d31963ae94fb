"""Reproducible draws: the documented standalone script (taken from
docs/supervision-sampling.md and run as its own process) re-derives Vetline's samples; the
procedure's properties (distinct, inside the population, uniform, bound to seed and
population); bad input."""

from __future__ import annotations

import hashlib
import hmac
import re
import subprocess
import sys
from array import array
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vetline.core.errors import ValidationFailed
from vetline.supervision.draw import (
    PROCEDURE,
    draw_positions,
    draw_sample,
    new_seed,
    population_sha256,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "supervision-sampling.md"
KAT_SEED = bytes(range(32)).hex()


@pytest.fixture(scope="module")
def rederive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The re-derivation script exactly as the documentation prints it."""
    found = re.search(r"<!-- rederive.py -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert found, "docs/supervision-sampling.md lost its rederive.py block"
    script = tmp_path_factory.mktemp("doc") / "rederive.py"
    script.write_text(found.group(1))
    return script


def run_script(script: Path, ids_file: Path, seed: str, n: int) -> tuple[str, list[int]]:
    out = subprocess.run(
        [sys.executable, "-I", str(script), str(ids_file), seed, str(n)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    return out[0], [int(x) for x in out[1:]]


@pytest.mark.parametrize(
    ("population", "n"),
    [
        (list(range(1, 1001)), 5),
        (sorted({x * 7919 % 100_003 + 1 for x in range(20_000)}), 93),
        ([42], 1),
        ([3, 9, 27, 81], 4),
        (list(range(10**12, 10**12 + 50_000, 3)), 1500),
    ],
)
def test_the_documented_script_rederives_the_sample(
    rederive: Path, tmp_path: Path, population: list[int], n: int
) -> None:
    seed = new_seed()
    sample = draw_sample(np.array(population, dtype=np.int64), sample_size=n, seed=seed)
    ids_file = tmp_path / "ids.txt"
    shuffled = population[::-1]  # an export in any order: the script sorts it
    ids_file.write_text("\n".join(str(i) for i in shuffled) + "\n")
    digest, ids = run_script(rederive, ids_file, seed, n)
    assert digest == sample.population_sha256
    assert ids == list(sample.ids)
    assert sample.population_size == len(population)
    assert sample.procedure == PROCEDURE == "vetline-sample-v1"


def test_known_answer_from_the_documentation(rederive: Path, tmp_path: Path) -> None:
    sample = draw_sample(list(range(1, 1001)), sample_size=5, seed=KAT_SEED)
    assert sample.population_sha256 == (
        "54c7779325a75ce781086486b520b637d1a3e4f4dee286e6ed038987e7c5b24a"
    )
    assert sample.ids == (805, 581, 638, 530, 852)
    text = DOC.read_text()
    assert sample.population_sha256 in text and "805, 581, 638, 530, 852" in text


def test_population_hash_is_sha256_of_big_endian_ids() -> None:
    ids = [1, 2, 300, 2**40]
    expected = hashlib.sha256(b"".join(i.to_bytes(8, "big", signed=True) for i in ids))
    assert population_sha256(ids) == expected.hexdigest()
    assert population_sha256(np.array(ids)) == expected.hexdigest()
    assert population_sha256(array("q", ids)) == expected.hexdigest()
    # big populations are hashed in chunks: same digest as one pass
    big = np.arange(1, 3_000_001, dtype=np.int64)
    assert population_sha256(big) == hashlib.sha256(big.astype(">i8").tobytes()).hexdigest()


def test_the_word_stream_is_hmac_sha256() -> None:
    """Draw positions equal a from-scratch reading of the spec with the hmac module."""
    seed, digest = new_seed(), population_sha256(range(1, 101))
    key, h = bytes.fromhex(seed), bytes.fromhex(digest)
    words = []
    for block in range(50):
        mac = hmac.digest(key, b"vetline-sample-v1" + h + block.to_bytes(8, "big"), "sha256")
        words += [int.from_bytes(mac[i : i + 8], "big") for i in range(0, 32, 8)]
    it = iter(words)
    positions, current = [], list(range(100))
    for j in range(30):
        m = 100 - j
        while (u := next(it)) >= 2**64 - 2**64 % m:
            pass
        r = j + u % m
        current[j], current[r] = current[r], current[j]
        positions.append(current[j])
    assert (
        draw_positions(population_size=100, sample_size=30, seed=seed, population_digest=digest)
        == positions
    )


@settings(max_examples=60, deadline=None)
@given(
    population=st.lists(
        st.integers(min_value=1, max_value=2**62), min_size=1, max_size=300, unique=True
    ).map(sorted),
    data=st.data(),
)
def test_samples_are_distinct_members_and_reproducible(
    population: list[int], data: st.DataObject
) -> None:
    n = data.draw(st.integers(min_value=0, max_value=len(population)))
    seed = data.draw(st.binary(min_size=32, max_size=32)).hex()
    a = draw_sample(population, sample_size=n, seed=seed)
    b = draw_sample(np.array(population, dtype=np.int64), sample_size=n, seed=seed.upper())
    assert a.ids == b.ids and len(a.ids) == n
    assert len(set(a.ids)) == n and set(a.ids) <= set(population)
    # a longer sample with the same seed starts with the shorter one
    if n < len(population):
        assert draw_sample(population, sample_size=n + 1, seed=seed).ids[:n] == a.ids
    if n == len(population):
        assert sorted(a.ids) == population


def test_seed_and_population_both_change_the_sample() -> None:
    population = list(range(1, 100_001))
    a = draw_sample(population, sample_size=50, seed="aa" * 32)
    assert draw_sample(population, sample_size=50, seed="ab" * 32).ids != a.ids
    # one record more in the population: another hash, another (unrelated) sample
    other = draw_sample([*population, 100_001], sample_size=50, seed="aa" * 32)
    assert other.population_sha256 != a.population_sha256
    assert len(set(other.ids) & set(a.ids)) < 5


def test_draws_are_uniform() -> None:
    """Every record equally likely: 4,000 draws of 3 out of 10, chi-square at 0.1%."""
    counts: Counter[int] = Counter()
    draws = 4000
    for i in range(draws):
        seed = hashlib.sha256(i.to_bytes(4, "big")).hexdigest()
        counts.update(draw_sample(list(range(10)), sample_size=3, seed=seed).ids)
    expected = draws * 3 / 10
    chi2 = sum((counts[k] - expected) ** 2 / expected for k in range(10))
    assert chi2 < 27.88  # chi-square, 9 degrees of freedom, p = 0.001
    # and the first draw alone is uniform too
    first: Counter[int] = Counter()
    for i in range(draws):
        seed = hashlib.sha256(b"f" + i.to_bytes(4, "big")).hexdigest()
        first[draw_sample(list(range(10)), sample_size=1, seed=seed).ids[0]] += 1
    assert sum((first[k] - draws / 10) ** 2 / (draws / 10) for k in range(10)) < 27.88


def test_empty_population_gives_an_empty_sample() -> None:
    sample = draw_sample([], sample_size=0, seed=new_seed())
    assert sample.ids == () and sample.population_size == 0
    assert sample.population_sha256 == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(
    ("population", "n", "seed", "field"),
    [
        ([1, 2, 3], 4, "aa" * 32, "sample_size"),
        ([1, 2, 3], -1, "aa" * 32, "sample_size"),
        ([1, 2, 3], True, "aa" * 32, "sample_size"),
        ([3, 2, 1], 1, "aa" * 32, "population"),
        ([1, 1, 2], 1, "aa" * 32, "population"),
        ([1, 2, 3], 1, "aa" * 31, "seed"),
        ([1, 2, 3], 1, "zz" * 32, "seed"),
        ([1, 2, 3], 1, "aa " * 21 + "a", "seed"),
        (np.array([[1, 2], [3, 4]]), 1, "aa" * 32, "population"),
        (np.array([1.5, 2.5]), 1, "aa" * 32, "population"),
        ([1, 2**70], 1, "aa" * 32, "population"),
        (["a", "b"], 1, "aa" * 32, "population"),
    ],
)
def test_bad_input(population: object, n: int, seed: str, field: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        draw_sample(population, sample_size=n, seed=seed)  # type: ignore[arg-type]
    assert err.value.field == field


def test_new_seeds_are_random_hex() -> None:
    seeds = {new_seed() for _ in range(20)}
    assert len(seeds) == 20
    assert all(re.fullmatch(r"[0-9a-f]{64}", s) for s in seeds)
