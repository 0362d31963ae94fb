"""How many records a spot-check reviews, and what the review then proves. Plain Python, no ORM.

**Statistical plans** use the binomial attribute-sampling method of audit practice (the method
behind the AICPA *Audit Sampling* guide's tables for tests of controls). With

* ``confidence`` the confidence level (1 - the risk of over-reliance ``alpha``),
* ``tolerable_rate`` ``pt``: the deviation rate that would make the control unreliable,
* ``expected_rate`` ``pe``: the deviation rate the plan expects to find,

the sample size is the smallest ``n >= 1`` such that::

    P(X <= k; n, pt) <= 1 - confidence,    X ~ Binomial(n, pt),    k = ceil(pe * n)

``k`` is the number of deviations the plan expects in its sample, rounded **up** to a whole
deviation: the sample must still let the reviewer conclude "below the tolerable rate" if it
finds as many deviations as expected. Rounding up is what the AICPA tables do (their figure in
brackets): 5% risk, 5% tolerable, 1% expected gives n = 93 with 1 allowed deviation. Rounding
down would ignore the expected rate until ``pe * n >= 1``, which understates the sample.

Everything is decided **exactly**. Rates are taken as exact fractions (``Decimal("0.95")`` is
19/20; a float goes through its shortest repr, so ``0.95`` is 19/20 too). The binomial
distribution function is walked from ``n = 1`` upwards in decimal interval arithmetic with
directed rounding (every lower bound rounded towards 0, every upper bound away from it, so the
true value is always inside the interval), and whenever ``1 - confidence`` is not clearly on one
side of the interval the comparison is made with integers: ``P(X <= k) <= alpha`` is
``alpha_den * sum_i C(n, i) a^i (b - a)^(n - i) <= alpha_num * b^n`` for ``pt = a / b``. No
binary floating point is involved anywhere. Because ``k`` steps up as ``n`` grows,
``P(X <= k(n))`` is not monotonic in ``n``; the walk therefore checks every ``n`` in turn, so
the answer is the smallest ``n`` even where the function jumps back above ``alpha``.

**Achieved upper deviation limit.** After review, with ``d`` deviations found in ``n`` items, the
one-sided Clopper-Pearson upper limit at ``confidence`` is the ``p`` with
``P(X <= d; n, p) = 1 - confidence`` (1 when ``d = n``). :func:`upper_deviation_limit` returns
it rounded **up** to ``decimals`` places: the smallest multiple of ``10**-decimals`` at which
``P(X <= d; n, p) <= 1 - confidence`` holds exactly (the distribution function decreases in
``p``, so this is a bisection on that grid, each step decided exactly as above). Rounding up
keeps the statement conservative: "with 95% confidence the deviation rate is at most 4.6530%".

**Fixed-rate plans** sample ``ceil(rate * population)`` records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_CEILING,
    ROUND_FLOOR,
    Context,
    Decimal,
    InvalidOperation,
)
from enum import StrEnum
from fractions import Fraction
from typing import Final

from vetline.core.errors import ValidationFailed

#: A statistical plan needing more than this many items is rejected: no review team works a
#: sample that size, and the fix is a wider gap between the tolerable and expected rates.
MAX_SAMPLE_SIZE: Final = 100_000

RateInput = Decimal | Fraction | int | str | float

_PRECISION: Final = 40  # decimal digits of the interval bounds; exact fallback when too close
_LO: Final = Context(prec=_PRECISION, rounding=ROUND_FLOOR, Emin=MIN_EMIN, Emax=MAX_EMAX)
_HI: Final = Context(prec=_PRECISION, rounding=ROUND_CEILING, Emin=MIN_EMIN, Emax=MAX_EMAX)
_REPORT: Final = Context(prec=12, rounding=ROUND_CEILING, Emin=MIN_EMIN, Emax=MAX_EMAX)
_ZERO: Final = Decimal(0)
_ONE: Final = Decimal(1)


class Method(StrEnum):
    FIXED_RATE = "fixed_rate"
    STATISTICAL = "statistical"


@dataclass(frozen=True, slots=True)
class SampleSize:
    """A statistical plan's sample size and the facts behind it."""

    n: int
    allowed_deviations: int  # k = ceil(expected_rate * n)
    risk: Decimal  # P(X <= k; n, tolerable_rate), rounded up to 12 significant digits
    confidence: Fraction
    tolerable_rate: Fraction
    expected_rate: Fraction


# --- input --------------------------------------------------------------------------------------


def as_fraction(value: RateInput, *, field: str, label: str) -> Fraction:
    """``value`` as an exact fraction, or ValidationFailed naming ``field``. Strings may be
    decimals ("0.95", "1e-3"), percentages ("95%") or fractions ("19/20")."""
    problem = f"{label} must be a number such as 0.95, not {repr(value)[:40]}."
    if isinstance(value, bool):
        raise ValidationFailed(problem, field=field)
    result: Fraction | None = None
    try:
        if isinstance(value, Fraction | int):
            result = Fraction(value)
        elif isinstance(value, float):
            # through the shortest repr: 0.95 means 19/20, not 0.94999999999999995559…
            result = _from_decimal(Decimal(repr(value)))
        elif isinstance(value, Decimal):
            result = _from_decimal(value)
        elif isinstance(value, str) and len(value) <= 64:
            text = value.strip()
            scale = 1
            if text.endswith("%"):
                text, scale = text[:-1].strip(), 100
            if "/" in text:
                top, _, bottom = text.partition("/")
                result = Fraction(int(top), int(bottom))
            else:
                result = _from_decimal(Decimal(text))
            if result is not None:
                result /= scale
    except (ValueError, ZeroDivisionError, InvalidOperation, OverflowError):
        result = None
    if result is None:
        raise ValidationFailed(problem, field=field)
    return result


def _from_decimal(value: Decimal) -> Fraction | None:
    """Finite and of a sane size: 1e999999999 would take minutes to turn into a fraction."""
    if not value.is_finite() or not -40 <= value.adjusted() <= 40:
        return Fraction(0) if value.is_zero() else None
    return Fraction(value)


def _pct(x: Fraction) -> str:
    return f"{float(x * 100):.4g}%"


# --- validation ---------------------------------------------------------------------------------


def _confidence(confidence: RateInput) -> Fraction:
    c = as_fraction(confidence, field="confidence", label="The confidence level")
    if not 0 < c < 1:
        raise ValidationFailed(
            f"The confidence level must be strictly between 0 and 1 (e.g. 0.95 for 95%); "
            f"{_pct(c)} is not. Choose a value such as 0.90, 0.95 or 0.99.",
            field="confidence",
        )
    return c


def validate_statistical_plan(
    *, confidence: RateInput, tolerable_rate: RateInput, expected_rate: RateInput
) -> tuple[Fraction, Fraction, Fraction]:
    """The three parameters as fractions, or ValidationFailed saying what to change."""
    c = _confidence(confidence)
    pt = as_fraction(tolerable_rate, field="tolerable_rate", label="The tolerable deviation rate")
    pe = as_fraction(expected_rate, field="expected_rate", label="The expected deviation rate")
    if not 0 < pt < 1:
        raise ValidationFailed(
            f"The tolerable deviation rate must be strictly between 0 and 1 (e.g. 0.05 for 5%); "
            f"{_pct(pt)} is not.",
            field="tolerable_rate",
        )
    if not 0 <= pe < 1:
        raise ValidationFailed(
            f"The expected deviation rate must be at least 0 and below 1 (e.g. 0.01 for 1%); "
            f"{_pct(pe)} is not.",
            field="expected_rate",
        )
    if pe >= pt:
        raise ValidationFailed(
            f"The expected deviation rate ({_pct(pe)}) must be below the tolerable rate "
            f"({_pct(pt)}): a sample cannot show the rate is under the tolerable one if "
            "the plan expects it to be at or above it. Lower the expected rate or raise the "
            "tolerable rate.",
            field="expected_rate",
        )
    return c, pt, pe


def validate_fixed_rate(*, rate: RateInput) -> Fraction:
    r = as_fraction(rate, field="fixed_rate", label="The sampling rate")
    if not 0 < r <= 1:
        raise ValidationFailed(
            f"The sampling rate must be above 0 and at most 1 (e.g. 0.02 to review 2% of "
            f"the population); {_pct(r)} is not.",
            field="fixed_rate",
        )
    return r


def check_sample_fits(*, sample_size: int, population_size: int) -> None:
    """ValidationFailed when the sample is larger than a non-empty population. An empty
    population is not an error here: the caller records that there was nothing to sample."""
    if population_size < 0 or sample_size < 0:
        raise ValidationFailed("Sizes cannot be negative.", field="sample_size")
    if population_size and sample_size > population_size:
        raise ValidationFailed(
            f"The plan needs a sample of {sample_size:,} records but the population holds "
            f"only {population_size:,}. Widen the population or lengthen the period, lower "
            "the confidence level, raise the tolerable rate or lower the expected rate, or "
            "use a fixed rate (a rate of 1 reviews every record).",
            field="population",
        )


# --- exact binomial distribution function -------------------------------------------------------


def binomial_cdf_at_most(n: int, k: int, p: Fraction, alpha: Fraction) -> bool:
    """Exactly whether ``P(X <= k; n, p) <= alpha``, with integers only."""
    if k >= n:
        return alpha >= 1
    if k < 0:
        return alpha >= 0
    a, b = p.numerator, p.denominator
    w = b - a
    # sum_{i<=k} C(n,i) a^i w^(n-i) = w^(n-k) * U,  U = sum_{i<=k} C(n,i) a^i w^(k-i) (Horner)
    u = 0
    c_a = 1  # C(n, i) * a^i
    for i in range(k + 1):
        u = u * w + c_a
        c_a = c_a * (n - i) // (i + 1) * a
    lhs: int = alpha.denominator * u * pow(w, n - k)
    rhs: int = alpha.numerator * pow(b, n)
    return lhs <= rhs


def _bounds(x: Fraction) -> tuple[Decimal, Decimal]:
    num, den = Decimal(x.numerator), Decimal(x.denominator)
    return _LO.divide(num, den), _HI.divide(num, den)


def _pow_bounds(lo: Decimal, hi: Decimal, n: int) -> tuple[Decimal, Decimal]:
    """Bounds of x**n for 0 <= lo <= x <= hi, by squaring with directed rounding."""
    rlo, rhi = _ONE, _ONE
    while n:
        if n & 1:
            rlo, rhi = _LO.multiply(rlo, lo), _HI.multiply(rhi, hi)
        n >>= 1
        if n:
            lo, hi = _LO.multiply(lo, lo), _HI.multiply(hi, hi)
    return rlo, rhi


def _cdf_bounds(n: int, k: int, p: Fraction) -> tuple[Decimal, Decimal]:
    """An interval holding P(X <= k; n, p), for 0 < p < 1 and 0 <= k < n."""
    if 2 * k > n:  # fewer terms the other way: P(X <= k; n, p) = 1 - P(X <= n-k-1; n, 1-p)
        qlo, qhi = _cdf_bounds(n, n - k - 1, 1 - p)
        return max(_ZERO, _LO.subtract(_ONE, qhi)), _HI.subtract(_ONE, qlo)
    wlo, whi = _bounds(1 - p)
    rlo, rhi = _bounds(p / (1 - p))
    tlo, thi = _pow_bounds(wlo, whi, n)
    slo, shi = tlo, thi
    for i in range(k):
        tlo = _LO.multiply(_LO.divide(_LO.multiply(tlo, rlo), i + 1), n - i)
        thi = _HI.multiply(_HI.divide(_HI.multiply(thi, rhi), i + 1), n - i)
        slo, shi = _LO.add(slo, tlo), _HI.add(shi, thi)
    return slo, min(shi, _ONE)


def cdf_le(n: int, k: int, p: Fraction, alpha: Fraction) -> bool:
    """Exactly whether ``P(X <= k; n, p) <= alpha`` (interval first, integers if needed)."""
    if p <= 0 or k >= n:
        return alpha >= 1
    if p >= 1:
        return (0 if k < n else 1) <= alpha
    if k < 0:
        return alpha >= 0
    lo, hi = _cdf_bounds(n, k, p)
    alo, ahi = _bounds(alpha)
    if hi <= alo:
        return True
    if lo > ahi:
        return False
    return binomial_cdf_at_most(n, k, p, alpha)


# --- sample sizes -------------------------------------------------------------------------------


def allowed_deviations(n: int, expected_rate: Fraction) -> int:
    """k: the deviations a sample of ``n`` is expected to hold, rounded up."""
    return math.ceil(expected_rate * n)


def statistical_sample_size(
    *, confidence: RateInput, tolerable_rate: RateInput, expected_rate: RateInput
) -> SampleSize:
    """The smallest n with ``P(X <= ceil(expected * n); n, tolerable) <= 1 - confidence``."""
    c, pt, pe = validate_statistical_plan(
        confidence=confidence, tolerable_rate=tolerable_rate, expected_rate=expected_rate
    )
    alpha = 1 - c
    alo, ahi = _bounds(alpha)
    plo, phi = _bounds(pt)
    wlo, whi = _bounds(1 - pt)
    rlo, rhi = _bounds(pt / (1 - pt))
    # Walk n = 1, 2, …, keeping intervals around F = P(X_n <= k) and m = P(X_n = k), k = k(n):
    #   P(X_{n+1} <= k) = P(X_n <= k) - pt * P(X_n = k)
    #   P(X_{n+1} = k)  = P(X_n = k) * (1 - pt) * (n + 1) / (n + 1 - k)
    #   P(X_{n+1} = k+1) = P(X_{n+1} = k) * (n + 1 - k) / (k + 1) * pt / (1 - pt)
    flo = fhi = mlo = mhi = _ONE
    k = 0
    for n in range(1, MAX_SAMPLE_SIZE + 1):  # from n - 1 to n, k unchanged first
        flo = max(_ZERO, _LO.subtract(flo, _HI.multiply(phi, mhi)))
        fhi = _HI.subtract(fhi, _LO.multiply(plo, mlo))
        mlo = _LO.divide(_LO.multiply(_LO.multiply(mlo, wlo), n), n - k)
        mhi = _HI.divide(_HI.multiply(_HI.multiply(mhi, whi), n), n - k)
        if allowed_deviations(n, pe) > k:  # then k steps up by one (pe < 1)
            mlo = _LO.multiply(_LO.divide(_LO.multiply(mlo, n - k), k + 1), rlo)
            mhi = _HI.multiply(_HI.divide(_HI.multiply(mhi, n - k), k + 1), rhi)
            flo, fhi = _LO.add(flo, mlo), min(_ONE, _HI.add(fhi, mhi))
            k += 1
        # clearly below alpha; or not clearly above it, and then decided with integers
        if fhi <= alo or (flo <= ahi and binomial_cdf_at_most(n, k, pt, alpha)):
            return SampleSize(
                n=n,
                allowed_deviations=k,
                risk=min(_REPORT.plus(fhi), _ONE),
                confidence=c,
                tolerable_rate=pt,
                expected_rate=pe,
            )
    raise ValidationFailed(
        f"This plan would need more than {MAX_SAMPLE_SIZE:,} items: the expected rate "
        f"({_pct(pe)}) is too close to the tolerable rate ({_pct(pt)}) at {_pct(c)} "
        "confidence. Raise the tolerable rate, lower the expected rate or the confidence, "
        "or use a fixed rate.",
        field="tolerable_rate",
    )


def fixed_rate_sample_size(*, rate: RateInput, population_size: int) -> int:
    """``ceil(rate * population_size)``; 0 for an empty population."""
    r = validate_fixed_rate(rate=rate)
    if population_size < 0:
        raise ValidationFailed("A population cannot be negative.", field="population")
    return math.ceil(r * population_size)


def plan_sample_size(
    *,
    method: Method | str,
    population_size: int,
    fixed_rate: RateInput | None = None,
    confidence: RateInput | None = None,
    tolerable_rate: RateInput | None = None,
    expected_rate: RateInput | None = None,
) -> int:
    """The sample a plan draws from a population of ``population_size`` records, validated.
    0 for an empty population (the caller records "nothing to sample")."""
    try:
        m = Method(method)
    except ValueError:
        raise ValidationFailed(
            "The method must be “fixed_rate” or “statistical”.", field="method"
        ) from None
    if m is Method.FIXED_RATE:
        if fixed_rate is None:
            raise ValidationFailed("A fixed-rate plan needs a sampling rate.", field="fixed_rate")
        return fixed_rate_sample_size(rate=fixed_rate, population_size=population_size)
    for name, value in (
        ("confidence", confidence),
        ("tolerable_rate", tolerable_rate),
        ("expected_rate", expected_rate),
    ):
        if value is None:
            raise ValidationFailed(
                "A statistical plan needs a confidence level, a tolerable deviation rate and "
                "an expected deviation rate.",
                field=name,
            )
    assert confidence is not None and tolerable_rate is not None and expected_rate is not None
    size = statistical_sample_size(
        confidence=confidence, tolerable_rate=tolerable_rate, expected_rate=expected_rate
    )
    if population_size == 0:
        return 0
    check_sample_fits(sample_size=size.n, population_size=population_size)
    return size.n


# --- achieved upper deviation limit -------------------------------------------------------------


def upper_deviation_limit(
    *, sample_size: int, deviations: int, confidence: RateInput, decimals: int = 6
) -> Decimal:
    """One-sided Clopper-Pearson upper limit of the deviation rate, rounded up to ``decimals``.

    The smallest ``p = m / 10**decimals`` with ``P(X <= deviations; sample_size, p) <= 1 -
    confidence``, decided exactly; 1 when every item deviated."""
    c = _confidence(confidence)
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 1:
        raise ValidationFailed(
            "The upper deviation limit needs a sample of at least one reviewed item.",
            field="sample_size",
        )
    if isinstance(deviations, bool) or not isinstance(deviations, int) or deviations < 0:
        raise ValidationFailed("Deviations must be a whole number, 0 or more.", field="deviations")
    if deviations > sample_size:
        raise ValidationFailed(
            f"{deviations:,} deviations cannot be found in a sample of {sample_size:,}.",
            field="deviations",
        )
    if not 0 <= decimals <= 12:
        raise ValidationFailed("Between 0 and 12 decimals.", field="decimals")
    if deviations == sample_size:
        return Decimal(1).quantize(Decimal(1).scaleb(-decimals))
    alpha = 1 - c
    scale = 10**decimals
    lo, hi = 0, scale  # P(p = 0) = 1 > alpha; P(p = 1) = 0 <= alpha
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if cdf_le(sample_size, deviations, Fraction(mid, scale), alpha):
            hi = mid
        else:
            lo = mid
    return Decimal(hi).scaleb(-decimals)
