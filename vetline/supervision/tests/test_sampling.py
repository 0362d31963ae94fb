"""Sample sizes and upper deviation limits, checked against values derived independently here
from scipy's binomial and beta distributions, against the AICPA audit-sampling table, and by
exact brute force (Fractions) on small cases."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats  # type: ignore[import-untyped]  # no stubs; test only

from vetline.core.errors import ValidationFailed
from vetline.supervision.sampling import (
    MAX_SAMPLE_SIZE,
    RateInput,
    as_fraction,
    binomial_cdf_at_most,
    cdf_le,
    check_sample_fits,
    fixed_rate_sample_size,
    plan_sample_size,
    statistical_sample_size,
    upper_deviation_limit,
)

CONFIDENCES = ["0.80", "0.90", "0.95", "0.99"]
TOLERABLES = ["0.02", "0.03", "0.05", "0.07", "0.10", "0.15", "0.20"]
EXPECTEDS = ["0", "0.0025", "0.005", "0.01", "0.02", "0.03", "0.05", "0.08"]
GRID = [
    (c, t, e)
    for c in CONFIDENCES
    for t in TOLERABLES
    for e in EXPECTEDS
    # expected well below tolerable: the plans an auditor would write (closer ones are slow
    # for the float scan below, not for the code under test)
    if Fraction(e) <= Fraction(t) * Fraction(2, 3)
]


def scipy_sample_size(confidence: str, tolerable: str, expected: str) -> int:
    """The smallest n with binom.cdf(ceil(expected * n), n, tolerable) <= 1 - confidence, by a
    plain scan in floating point (scipy), with k computed in integers."""
    alpha = 1 - float(Fraction(confidence))
    e = Fraction(expected)
    top = 50
    while True:
        ns = np.arange(1, top + 1)
        ks = np.array([-(-e.numerator * int(n) // e.denominator) for n in ns])
        cdf = stats.binom.cdf(ks, ns, float(Fraction(tolerable)))
        ok = np.nonzero(cdf <= alpha)[0]
        if ok.size:
            return int(ns[ok[0]])
        top *= 2


@pytest.mark.parametrize(("confidence", "tolerable", "expected"), GRID)
def test_sample_size_matches_scipy(confidence: str, tolerable: str, expected: str) -> None:
    size = statistical_sample_size(
        confidence=confidence, tolerable_rate=tolerable, expected_rate=expected
    )
    assert size.n == scipy_sample_size(confidence, tolerable, expected)
    assert size.allowed_deviations == math.ceil(Fraction(expected) * size.n)
    p = stats.binom.cdf(size.allowed_deviations, size.n, float(Fraction(tolerable)))
    assert float(size.risk) == pytest.approx(p, rel=1e-9)
    assert float(size.risk) <= 1 - float(Fraction(confidence)) + 1e-12


@pytest.mark.parametrize(
    ("tolerable", "expected", "n", "k"),
    [
        # AICPA Audit Sampling guide, table A-1 (5% risk of over-reliance): size (deviations)
        ("0.05", "0", 59, 0),
        ("0.10", "0", 29, 0),
        ("0.02", "0", 149, 0),
        ("0.05", "0.01", 93, 1),
        ("0.04", "0.01", 156, 2),
        ("0.02", "0.0025", 236, 1),
        ("0.05", "0.02", 181, 4),
    ],
)
def test_aicpa_table(tolerable: str, expected: str, n: int, k: int) -> None:
    size = statistical_sample_size(
        confidence="0.95", tolerable_rate=tolerable, expected_rate=expected
    )
    assert (size.n, size.allowed_deviations) == (n, k)


def test_realistic_strict_plans_are_exact_and_quick() -> None:
    assert statistical_sample_size(
        confidence="0.99", tolerable_rate="0.01", expected_rate="0"
    ).n == (math.ceil(math.log(0.01) / math.log(0.99)))
    size = statistical_sample_size(confidence="0.99", tolerable_rate="0.01", expected_rate="0.005")
    assert size.n == scipy_sample_size("0.99", "0.01", "0.005")
    # the exact comparison holds at n and fails at n - 1
    pt, alpha = Fraction(1, 100), Fraction(1, 100)
    assert binomial_cdf_at_most(size.n, size.allowed_deviations, pt, alpha)
    k_before = math.ceil(Fraction(1, 200) * (size.n - 1))
    assert not binomial_cdf_at_most(size.n - 1, k_before, pt, alpha)


def test_the_smallest_n_even_where_the_function_jumps_back() -> None:
    """k = ceil(pe * n) steps up, so P(X <= k(n)) can rise again after first dipping below
    alpha: the answer is the first n that passes, found by checking every n."""
    found = 0
    for t, e in [("0.1", "0.05"), ("0.2", "0.1"), ("0.15", "0.05")]:
        pt, pe, alpha = Fraction(t), Fraction(e), Fraction(1, 20)
        size = statistical_sample_size(confidence="0.95", tolerable_rate=t, expected_rate=e)
        passing = [n for n in range(1, size.n + 40) if cdf_le(n, math.ceil(pe * n), pt, alpha)]
        assert passing[0] == size.n
        found += any(b - a > 1 for a, b in itertools.pairwise(passing))
    assert found  # at least one of these really does jump back above alpha
    # the documented example: 5% tolerable, 1% expected passes at 93-100, fails at 101-123
    pt, pe, alpha = Fraction(5, 100), Fraction(1, 100), Fraction(1, 20)
    ok = {n: cdf_le(n, math.ceil(pe * n), pt, alpha) for n in range(92, 125)}
    assert not ok[92] and all(ok[n] for n in range(93, 101))
    assert not any(ok[n] for n in range(101, 124)) and ok[124]


@pytest.mark.parametrize("confidence", ["0.90", "0.95", "0.99"])
@pytest.mark.parametrize(
    ("n", "d"),
    [
        (1, 0),
        (20, 0),
        (20, 3),
        (59, 0),
        (93, 1),
        (100, 10),
        (250, 2),
        (1000, 12),
        (5000, 40),
        (5000, 4999),
        (100, 100),
    ],
)
def test_upper_limit_matches_scipy(confidence: str, n: int, d: int) -> None:
    limit = upper_deviation_limit(sample_size=n, deviations=d, confidence=confidence)
    assert limit.as_tuple().exponent == -6
    c = float(Fraction(confidence))
    exact = 1.0 if d == n else float(stats.beta.ppf(c, d + 1, n - d))  # Clopper-Pearson
    assert exact - 1e-9 <= float(limit) < exact + 1e-6 + 1e-9
    if d < n:  # the grid point below does not reach the confidence: rounded up, not down
        alpha = 1 - Fraction(confidence)
        assert cdf_le(n, d, Fraction(limit), alpha)
        assert not cdf_le(n, d, Fraction(limit) - Fraction(1, 10**6), alpha)


def test_upper_limit_other_precisions() -> None:
    assert upper_deviation_limit(
        sample_size=59, deviations=0, confidence="0.95", decimals=4
    ) == Decimal("0.0496")
    assert upper_deviation_limit(sample_size=10, deviations=10, confidence="0.95") == Decimal(
        "1.000000"
    )


# --- exactness: brute force on small cases -------------------------------------------------


def brute_cdf(n: int, k: int, p: Fraction) -> Fraction:
    return sum((math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1)), Fraction(0))


fractions_01 = st.builds(
    Fraction, st.integers(min_value=1, max_value=999), st.just(1000)
) | st.builds(Fraction, st.integers(min_value=1, max_value=6), st.just(7))


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=40),
    k=st.integers(min_value=-1, max_value=41),
    p=fractions_01,
    alpha=fractions_01,
)
def test_exact_cdf_comparison_matches_brute_force(
    n: int, k: int, p: Fraction, alpha: Fraction
) -> None:
    truth = brute_cdf(n, min(max(k, -1), n), p) if k >= 0 else Fraction(0)
    assert binomial_cdf_at_most(n, k, p, alpha) == (truth <= alpha)
    assert cdf_le(n, k, p, alpha) == (truth <= alpha)
    # exactly at the boundary: equality counts as passing
    assert cdf_le(n, k, p, truth) is True


@settings(max_examples=60, deadline=None)
@given(
    c=st.sampled_from(["0.8", "0.9", "0.95"]),
    t=st.integers(min_value=5, max_value=30),
    e=st.integers(min_value=0, max_value=20),
)
def test_sample_size_is_the_smallest_passing_n(c: str, t: int, e: int) -> None:
    pt, pe = Fraction(t, 100), Fraction(min(e, t // 2), 100)
    alpha = 1 - Fraction(c)
    size = statistical_sample_size(confidence=c, tolerable_rate=pt, expected_rate=pe)
    k = size.allowed_deviations
    assert k == math.ceil(pe * size.n)
    assert binomial_cdf_at_most(size.n, k, pt, alpha)
    for m in range(1, size.n):
        assert not binomial_cdf_at_most(m, math.ceil(pe * m), pt, alpha)


@settings(max_examples=40, deadline=None)
@given(
    t=st.integers(min_value=3, max_value=20),
    e=st.integers(min_value=0, max_value=10),
    c1=st.sampled_from(["0.8", "0.9", "0.95", "0.99"]),
    c2=st.sampled_from(["0.8", "0.9", "0.95", "0.99"]),
)
def test_sample_size_is_monotonic(t: int, e: int, c1: str, c2: str) -> None:
    pt, pe = Fraction(t, 100), Fraction(min(e, t - 2), 200)
    lo, hi = sorted([c1, c2], key=Fraction)
    n = statistical_sample_size(confidence=lo, tolerable_rate=pt, expected_rate=pe).n
    # more confidence, a tighter tolerable rate or a higher expected rate never shrink it
    assert statistical_sample_size(confidence=hi, tolerable_rate=pt, expected_rate=pe).n >= n
    tighter = pt - Fraction(1, 100)
    if pe < tighter:
        assert (
            statistical_sample_size(confidence=lo, tolerable_rate=tighter, expected_rate=pe).n >= n
        )
    more = pe + Fraction(1, 200)
    if more < pt:
        assert statistical_sample_size(confidence=lo, tolerable_rate=pt, expected_rate=more).n >= n


@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=1, max_value=400), data=st.data())
def test_upper_limit_grows_with_deviations(n: int, data: st.DataObject) -> None:
    d = data.draw(st.integers(min_value=0, max_value=n - 1))
    a = upper_deviation_limit(sample_size=n, deviations=d, confidence="0.95", decimals=4)
    b = upper_deviation_limit(sample_size=n, deviations=d + 1, confidence="0.95", decimals=4)
    assert Decimal(d) / n <= a <= b


# --- inputs and bad plans -----------------------------------------------------------------


def test_rates_are_exact_whatever_their_type() -> None:
    for value in ("0.95", Decimal("0.95"), Fraction(19, 20), 0.95, "95%", "19/20", " 9.5e-1 "):
        assert as_fraction(value, field="confidence", label="c") == Fraction(19, 20)
    assert as_fraction("0", field="expected_rate", label="e") == 0
    assert as_fraction(Decimal("0E-1000"), field="expected_rate", label="e") == 0
    plans: list[tuple[RateInput, RateInput, RateInput]] = [
        ("0.95", "0.05", "0.01"),
        (0.95, 0.05, 0.01),
        (Decimal("0.95"), 0.05, 0.01),
    ]
    same = {
        statistical_sample_size(confidence=c, tolerable_rate=t, expected_rate=e).n
        for c, t, e in plans
    }
    assert same == {93}


@pytest.mark.parametrize(
    ("kwargs", "field", "says"),
    [
        ({"confidence": "1"}, "confidence", "strictly between 0 and 1"),
        ({"confidence": "0"}, "confidence", "strictly between 0 and 1"),
        ({"confidence": "1.5"}, "confidence", "0.95"),
        ({"confidence": "nan"}, "confidence", "must be a number"),
        ({"confidence": float("inf")}, "confidence", "must be a number"),
        ({"confidence": True}, "confidence", "must be a number"),
        ({"confidence": "ninety"}, "confidence", "must be a number"),
        ({"confidence": "1e999999999"}, "confidence", "must be a number"),
        ({"confidence": Decimal("1e-999999999")}, "confidence", "must be a number"),
        ({"confidence": "1/0"}, "confidence", "must be a number"),
        ({"confidence": "9" * 65}, "confidence", "must be a number"),
        ({"confidence": float("nan")}, "confidence", "must be a number"),
        ({"tolerable_rate": "0"}, "tolerable_rate", "strictly between 0 and 1"),
        ({"tolerable_rate": "1"}, "tolerable_rate", "strictly between 0 and 1"),
        ({"expected_rate": "-0.01"}, "expected_rate", "at least 0"),
        ({"expected_rate": "0.05"}, "expected_rate", "Lower the expected rate"),
        ({"expected_rate": "0.07"}, "expected_rate", "must be below the tolerable rate"),
    ],
)
def test_impossible_plans_say_what_to_change(kwargs: dict[str, Any], field: str, says: str) -> None:
    plan = {"confidence": "0.95", "tolerable_rate": "0.05", "expected_rate": "0.01"} | kwargs
    with pytest.raises(ValidationFailed) as err:
        statistical_sample_size(**plan)
    assert err.value.field == field
    assert says in err.value.message


def test_a_plan_beyond_the_maximum_is_rejected_not_computed_forever() -> None:
    with pytest.raises(ValidationFailed) as err:
        statistical_sample_size(confidence="0.99", tolerable_rate="0.01", expected_rate="0.0099")
    assert f"{MAX_SAMPLE_SIZE:,}" in err.value.message
    assert err.value.field == "tolerable_rate"


def test_fixed_rate_and_plan_sizes() -> None:
    assert fixed_rate_sample_size(rate="0.02", population_size=1000) == 20
    assert fixed_rate_sample_size(rate="0.02", population_size=1001) == 21  # rounded up
    assert fixed_rate_sample_size(rate="1", population_size=7) == 7
    assert fixed_rate_sample_size(rate="0.5", population_size=0) == 0
    for bad in ("0", "1.01", "-0.1"):
        with pytest.raises(ValidationFailed) as err:
            fixed_rate_sample_size(rate=bad, population_size=10)
        assert err.value.field == "fixed_rate"
    assert plan_sample_size(method="fixed_rate", fixed_rate="0.1", population_size=95) == 10
    assert (
        plan_sample_size(
            method="statistical",
            population_size=1000,
            confidence="0.95",
            tolerable_rate="0.05",
            expected_rate="0.01",
        )
        == 93
    )
    # an empty population is not an error: the caller records "nothing to sample"
    assert (
        plan_sample_size(
            method="statistical",
            population_size=0,
            confidence="0.95",
            tolerable_rate="0.05",
            expected_rate="0.01",
        )
        == 0
    )
    with pytest.raises(ValidationFailed) as err:
        plan_sample_size(
            method="statistical",
            population_size=50,
            confidence="0.95",
            tolerable_rate="0.05",
            expected_rate="0.01",
        )
    assert err.value.field == "population"
    assert "93 records" in err.value.message and "only 50" in err.value.message
    with pytest.raises(ValidationFailed) as err:
        plan_sample_size(method="statistical", population_size=50, confidence="0.95")
    assert err.value.field == "tolerable_rate"
    with pytest.raises(ValidationFailed) as err:
        plan_sample_size(method="fixed_rate", population_size=50)
    assert err.value.field == "fixed_rate"
    with pytest.raises(ValidationFailed) as err:
        plan_sample_size(method="random", population_size=50)
    assert err.value.field == "method"


def test_sample_fits_population() -> None:
    check_sample_fits(sample_size=10, population_size=10)
    check_sample_fits(sample_size=10, population_size=0)
    with pytest.raises(ValidationFailed) as err:
        check_sample_fits(sample_size=11, population_size=10)
    assert err.value.field == "population"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sample_size": 0, "deviations": 0}, "sample_size"),
        ({"sample_size": 10, "deviations": 11}, "deviations"),
        ({"sample_size": 10, "deviations": -1}, "deviations"),
        ({"sample_size": 10, "deviations": 1, "confidence": "1"}, "confidence"),
        ({"sample_size": 10, "deviations": 1, "decimals": 13}, "decimals"),
    ],
)
def test_upper_limit_bad_input(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        upper_deviation_limit(**({"confidence": "0.95"} | kwargs))
    assert err.value.field == field
