"""Content-addressed blob storage for attachments: a blob is named by the SHA-256 of its bytes.

Two backends implement :class:`BlobStore`, chosen by ``VETLINE_BLOB_BACKEND``:

* ``local`` (the embedded default) keeps blobs on the local filesystem under ``VETLINE_BLOB_DIR``
  (default ``DATA_DIR/blobs``), fanned out as ``ab/cd/abcdef…`` so no directory grows too large.
  The filesystem cannot enforce a retention period, so ``retain_until`` is not enforced there.
* ``s3`` (production) keeps each blob as one object in an S3-compatible bucket with Object Lock,
  locked in compliance mode until its retain-until date (:mod:`vetline.archive.blobs_s3`).

In both, blobs are write-once (writing the same bytes again writes nothing new, and never
shortens a retention) and every read re-hashes the bytes, so a damaged or altered blob is
refused, not served. Disposal deletes a blob through :meth:`BlobStore.delete`, which reports
what the store did instead of raising, so one locked blob cannot stop a disposal run.

Legal holds reach the store through :meth:`BlobStore.set_legal_hold` (S3: the per-object legal
hold, ``PutObjectLegalHold``, which blocks deletion whatever the retention date says). The
filesystem has no such thing: ``LocalBlobStore.legal_hold_supported`` is False, the
reconciliation (:func:`vetline.archive.retention_actions.sync_blob_legal_holds`) still keeps
its table of held blobs, and disposal refuses held records in both backends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import functools
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from vetline.archive.blobs_s3 import S3BlobStore

_HEX64 = re.compile(r"[0-9a-f]{64}")

BACKEND_LOCAL = "local"
BACKEND_S3 = "s3"
BACKENDS = (BACKEND_LOCAL, BACKEND_S3)


class BlobError(Exception):
    """A blob is missing, or its bytes no longer match its name."""


class DeletionOutcome(enum.StrEnum):
    DELETED = "deleted"  # the store no longer holds the blob
    MISSING = "missing"  # there was nothing to delete
    RETAINED = "retained"  # its retention has not passed: not attempted
    REFUSED = "refused"  # the store refused (S3: AccessDenied, still locked or legal hold ON)
    FAILED = "failed"  # the store could not be asked (network, permissions, …)


@dataclass(frozen=True, slots=True)
class BlobDeletion:
    """What a store did when asked to delete one blob."""

    sha256: str
    outcome: DeletionOutcome
    retained_until: dt.datetime | None = None
    detail: str = ""

    @property
    def removed(self) -> bool:
        return self.outcome in (DeletionOutcome.DELETED, DeletionOutcome.MISSING)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "outcome": self.outcome.value,
            "retained_until": self.retained_until.isoformat() if self.retained_until else None,
            "detail": self.detail,
        }


class LegalHoldOutcome(enum.StrEnum):
    APPLIED = "applied"  # every version of the blob now has the legal hold asked for
    MISSING = "missing"  # the store does not hold the blob: nothing can be held
    REFUSED = "refused"  # the store refused (S3: AccessDenied, InvalidRequest: no Object Lock)
    FAILED = "failed"  # the store could not be asked (network, …)
    UNSUPPORTED = "unsupported"  # the backend cannot hold a blob (the local filesystem)


@dataclass(frozen=True, slots=True)
class LegalHoldChange:
    """What a store did when asked to turn one blob's legal hold on or off."""

    sha256: str
    on: bool
    outcome: LegalHoldOutcome
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == LegalHoldOutcome.APPLIED

    def as_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "on": self.on,
            "outcome": self.outcome.value,
            "detail": self.detail,
        }


class BlobStore(Protocol):
    #: Whether :meth:`set_legal_hold` can enforce anything in this backend.
    legal_hold_supported: bool

    @property
    def where(self) -> str:
        """Where the blobs are (a directory, a bucket): a legal hold applied in one store is
        not applied in another."""
        ...

    def put(self, data: bytes, *, retain_until: dt.datetime | None = None) -> str:
        """Store ``data`` and return its name. ``retain_until``: the earliest moment the blob
        may be deleted (default: now plus the longest record-class retention period)."""
        ...

    def get(self, sha256_hex: str) -> bytes: ...

    def exists(self, sha256_hex: str) -> bool: ...

    def delete(self, sha256_hex: str, *, now: dt.datetime) -> BlobDeletion:
        """Delete the blob if its retention has passed at ``now``; never raises for a refusal."""
        ...

    def set_legal_hold(self, sha256_hex: str, on: bool) -> LegalHoldChange:
        """Turn the blob's legal hold on or off; never raises for a refusal. Idempotent."""
        ...


def check_name(sha256_hex: str) -> str:
    if not isinstance(sha256_hex, str) or not _HEX64.fullmatch(sha256_hex):
        raise BlobError(f"{sha256_hex!r} is not a lowercase SHA-256 hex digest")
    return sha256_hex


class LocalBlobStore:
    """Blobs on the local filesystem (write-once, verified on read). It cannot enforce a
    retention date or a legal hold: disposal, which refuses held records, is what keeps them."""

    legal_hold_supported = False

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def where(self) -> str:
        return f"file://{self.root}"

    def path_for(self, sha256_hex: str) -> Path:
        name = check_name(sha256_hex)
        return self.root / name[:2] / name[2:4] / name

    def put(self, data: bytes, *, retain_until: dt.datetime | None = None) -> str:
        # ``retain_until`` is accepted for the protocol's sake: a filesystem has no WORM lock.
        name = hashlib.sha256(data).hexdigest()
        path = self.path_for(name)
        if path.exists():
            return name
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and link it into place: readers never see a partial blob,
        # and a concurrent writer of the same bytes cannot clobber the first one.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o444)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
        return name

    def get(self, sha256_hex: str) -> bytes:
        path = self.path_for(sha256_hex)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise BlobError(f"blob {sha256_hex} is missing") from exc
        if hashlib.sha256(data).hexdigest() != sha256_hex:
            raise BlobError(f"blob {sha256_hex} is damaged: its bytes no longer match its hash")
        return data

    def exists(self, sha256_hex: str) -> bool:
        return self.path_for(sha256_hex).exists()

    def delete(self, sha256_hex: str, *, now: dt.datetime) -> BlobDeletion:
        path = self.path_for(sha256_hex)
        try:
            path.unlink()
        except FileNotFoundError:
            return BlobDeletion(sha256_hex, DeletionOutcome.MISSING)
        except OSError as exc:
            return BlobDeletion(sha256_hex, DeletionOutcome.FAILED, detail=str(exc))
        return BlobDeletion(sha256_hex, DeletionOutcome.DELETED)

    def set_legal_hold(self, sha256_hex: str, on: bool) -> LegalHoldChange:
        return LegalHoldChange(
            check_name(sha256_hex),
            on,
            LegalHoldOutcome.UNSUPPORTED,
            detail="the local filesystem cannot enforce a legal hold",
        )


# --------------------------------------------------------------------------- retention dates


def _retention_days_by_class() -> dict[str, int]:
    from vetline.archive.models_retention import RecordClass
    from vetline.archive.retention import DEFAULT_CLASSES

    configured = dict(RecordClass.objects.values_list("code", "retention_days"))
    return configured or {c.code: c.retention_days for c in DEFAULT_CLASSES}


def retain_until_for(*, captured_at: dt.datetime, record_class: str | None = None) -> dt.datetime:
    """The earliest moment a blob captured at ``captured_at`` may be deleted: capture time plus
    the retention period of ``record_class`` (as configured in the database), counted as
    disposal counts it (:func:`vetline.archive.retention.expires_at`). Without a class, or for
    a class with no configured period, the longest configured period, so a blob is never
    released before any record that may refer to it."""
    from vetline.archive.retention import expires_at

    if captured_at.tzinfo is None:
        raise ValueError("captured_at must be timezone-aware")
    periods = _retention_days_by_class()
    days = periods.get(record_class or "") or max(periods.values())
    return expires_at(captured_at, days)


# --------------------------------------------------------------------------- backend selection


def default_store() -> LocalBlobStore | S3BlobStore:
    """The store configured by ``VETLINE_BLOB_BACKEND`` (``local`` or ``s3``)."""
    from django.conf import settings

    backend = getattr(settings, "VETLINE_BLOB_BACKEND", BACKEND_LOCAL)
    if backend == BACKEND_LOCAL:
        return LocalBlobStore(settings.VETLINE_BLOB_DIR)
    if backend == BACKEND_S3:
        return _s3_store(
            settings.VETLINE_S3_BUCKET,
            settings.VETLINE_S3_ENDPOINT_URL or None,
            settings.VETLINE_S3_REGION or None,
        )
    raise BlobError(f"VETLINE_BLOB_BACKEND is {backend!r}; it must be one of {BACKENDS}")


@functools.lru_cache(maxsize=4)
def _s3_store(bucket: str, endpoint_url: str | None, region: str | None) -> S3BlobStore:
    # One client per configuration: boto3 clients are thread-safe and slow to build.
    from vetline.archive.blobs_s3 import S3BlobStore

    return S3BlobStore.from_config(
        bucket=bucket,
        endpoint_url=endpoint_url,
        region=region,
        default_retain_until=lambda now: retain_until_for(captured_at=now),
    )
