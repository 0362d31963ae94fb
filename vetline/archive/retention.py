"""Retention periods, as plain logic: no ORM, so it can be read and tested on its own.

The regulatory anchors (see ``PRODUCT.md``):

* SEC Rule 17a-4(b)(4) and FINRA Rule 4511: business communications (originals of all
  communications received and copies of all sent relating to the business) are kept **3 years**,
  the first **2 years easily accessible**.
* SEC Rule 17a-4(a) and FINRA Rule 4511(b): other books and records without a specified period
  are kept **6 years**.

A period is configured in days (``retention_days``), but "3 years" must never end a day early
because of a leap day: a record expires only once *both* ``retention_days`` days and
``retention_days // 365`` calendar years have passed since its anchor time.

The *anchor* of a record is when the firm captured it (``captured_at``). An item's versions
(an edit, a deletion) are disposed of together: the item expires when its newest version does,
so an original is never disposed of while a later version of it is still kept.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from vetline.archive.integrity.canonical import disposal_leaf_bytes

DAYS_PER_YEAR: Final = 365
MAX_RETENTION_DAYS: Final = 100 * DAYS_PER_YEAR

FINRA_SEC_CITATION: Final = (
    "SEC Rule 17a-4(b) and FINRA Rule 4511: business communications are kept 3 years, the "
    "first 2 years easily accessible; other books and records (SEC 17a-4(a), FINRA 4511(b)) "
    "6 years."
)


@dataclass(frozen=True, slots=True)
class ClassDefault:
    code: str
    label: str
    retention_days: int
    easily_accessible_days: int
    regulatory_basis: str
    # The shortest period the regulation allows for this class; 0 when none applies.
    minimum_days: int


DEFAULT_CLASSES: Final = (
    ClassDefault(
        "business_communication",
        "Business communication",
        3 * DAYS_PER_YEAR,
        2 * DAYS_PER_YEAR,
        "SEC 17a-4(b)(4), FINRA 4511: communications relating to the business, 3 years "
        "(first 2 easily accessible).",
        3 * DAYS_PER_YEAR,
    ),
    ClassDefault(
        "books_and_records",
        "Other books and records",
        6 * DAYS_PER_YEAR,
        2 * DAYS_PER_YEAR,
        "SEC 17a-4(a), FINRA 4511(b): books and records without a specified period, 6 years.",
        6 * DAYS_PER_YEAR,
    ),
    ClassDefault(
        "profile",
        "Profile (static content)",
        6 * DAYS_PER_YEAR,
        2 * DAYS_PER_YEAR,
        "FINRA 2210 retail communications kept as books and records under FINRA 4511(b): 6 years.",
        0,
    ),
    ClassDefault(
        "internal",
        "Internal communication",
        3 * DAYS_PER_YEAR,
        2 * DAYS_PER_YEAR,
        "Internal communications relating to the business (SEC 17a-4(b)(4)), 3 years.",
        0,
    ),
)
MINIMUM_DAYS: Final[Mapping[str, int]] = {c.code: c.minimum_days for c in DEFAULT_CLASSES}


class PeriodError(ValueError):
    """A retention period that cannot be configured; the message says why."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def validate_period(*, code: str, retention_days: int, easily_accessible_days: int) -> None:
    """Refuse periods that are impossible or shorter than the regulation allows."""
    if not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise PeriodError(
            f"The retention period must be between 1 and {MAX_RETENTION_DAYS:,} days.",
            "retention_days",
        )
    minimum = MINIMUM_DAYS.get(code, 0)
    if retention_days < minimum:
        raise PeriodError(
            f"{code} records must be kept at least {minimum:,} days "
            f"({minimum // DAYS_PER_YEAR} years; SEC 17a-4, FINRA 4511).",
            "retention_days",
        )
    if not 0 <= easily_accessible_days <= retention_days:
        raise PeriodError(
            "The easily accessible period must be between 0 days and the retention period.",
            "easily_accessible_days",
        )
    if minimum and easily_accessible_days < 2 * DAYS_PER_YEAR:
        raise PeriodError(
            "The first 2 years (730 days) must be easily accessible (SEC 17a-4(b)).",
            "easily_accessible_days",
        )


def _years_before(moment: dt.datetime, years: int) -> dt.datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February in a year without one
        return moment.replace(year=moment.year - years, day=28)


def _years_after(moment: dt.datetime, years: int) -> dt.datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, month=3, day=1)


def expires_at(anchor: dt.datetime, retention_days: int) -> dt.datetime:
    """When a record anchored at ``anchor`` may first be disposed of."""
    by_days = anchor + dt.timedelta(days=retention_days)
    return max(by_days, _years_after(anchor, retention_days // DAYS_PER_YEAR))


def cutoff(now: dt.datetime, retention_days: int) -> dt.datetime:
    """Records anchored at or before this moment have expired at ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    by_days = now - dt.timedelta(days=retention_days)
    return min(by_days, _years_before(now, retention_days // DAYS_PER_YEAR))


def is_expired(anchor: dt.datetime, retention_days: int, now: dt.datetime) -> bool:
    return expires_at(anchor, retention_days) <= now


def check_date_range(date_from: dt.date | None, date_to: dt.date | None) -> None:
    if date_from is not None and date_to is not None and date_to < date_from:
        raise PeriodError("The end of the date range is before its start.", "date_to")


# --------------------------------------------------------------------------- disposal leaves

DISPOSAL_REASON_EXPIRED: Final = "retention_expired"


def disposal_leaf_from_row(row: Any) -> bytes:
    """Canonical bytes of the ``disposal`` leaf of a :class:`DisposalRecord` row. Disposal and
    verification both call this, so the leaf is rebuilt from exactly the stored fields."""
    return disposal_leaf_bytes(
        disposed_index=row.log_index,
        original_leaf_hash=bytes(row.original_leaf_hash),
        disposed_at=row.disposed_at,
        reason=row.reason,
        extra={
            "record_id": row.record_id,
            "record_class": row.record_class,
            "run_id": row.run_id,
        },
    )


@dataclass
class DisposalReport:
    """What one disposal run did (or, in a dry run, would do)."""

    now: dt.datetime
    dry_run: bool
    run_id: int | None = None
    disposed_by_class: dict[str, int] = field(default_factory=dict)
    held_skipped: int = 0
    integrity_skipped: int = 0
    unconfigured_classes: list[str] = field(default_factory=list)
    disposed_ids: list[int] = field(default_factory=list)
    # Attachment blobs of disposed records that no remaining record refers to: how many the blob
    # store deleted, and those it kept (still locked, refused, or unreachable), with why.
    blobs_deleted: int = 0
    blobs_kept: list[dict[str, Any]] = field(default_factory=list)

    @property
    def disposed(self) -> int:
        return sum(self.disposed_by_class.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "now": self.now.isoformat(),
            "dry_run": self.dry_run,
            "disposed": self.disposed,
            "disposed_by_class": dict(self.disposed_by_class),
            "held_skipped": self.held_skipped,
            "integrity_skipped": self.integrity_skipped,
            "unconfigured_classes": list(self.unconfigured_classes),
            "disposed_ids": list(self.disposed_ids),
            "blobs_deleted": self.blobs_deleted,
            "blobs_kept": list(self.blobs_kept),
        }

    def summary(self) -> str:
        verb = "would dispose of" if self.dry_run else "disposed of"
        by_class = ", ".join(f"{k}: {v}" for k, v in sorted(self.disposed_by_class.items()))
        return (
            f"{verb} {self.disposed} record(s)"
            + (f" ({by_class})" if by_class else "")
            + f"; {self.held_skipped} expired record(s) kept under legal hold"
            + (
                f"; {self.integrity_skipped} skipped because they no longer match their leaf"
                if self.integrity_skipped
                else ""
            )
            + (f"; {self.blobs_deleted} attachment blob(s) deleted" if self.blobs_deleted else "")
            + (
                f"; {len(self.blobs_kept)} attachment blob(s) kept by the blob store (still "
                f"locked, or the store refused or could not be reached)"
                if self.blobs_kept
                else ""
            )
        )

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)
