"""Attachment blobs in an S3-compatible bucket with Object Lock, in compliance mode.

Each blob is one object whose key is its content address, the lowercase SHA-256 hex of its
bytes. It is written with ``ObjectLockMode=COMPLIANCE`` and ``ObjectLockRetainUntilDate``: until
that date no one, the bucket owner and the root account included, can delete or overwrite that
object version or shorten its retention. The date is the capture time plus the retention period
of the record class (:func:`vetline.archive.blobs.retain_until_for`); by default the longest
configured period.

* **Idempotent writes.** A put first asks for the object (HEAD). If it is there with the right
  bytes (its S3 SHA-256 checksum, or failing that its bytes, match the name), nothing is
  written; if its retain-until date is earlier than the one asked for, it is extended with
  ``PutObjectRetention`` (compliance mode allows moving the date later, never earlier). A
  re-put never shortens a retention. An object under the name whose bytes do not match (written
  by something else than Vetline) gets a new, correct version on top of it.
* **Verified reads.** Every read re-hashes the bytes and refuses a blob that does not match.
* **Deletion** (disposal): each version of the object is deleted only once its retain-until
  date has passed. A version still locked is reported (``retained``), as is one the store
  refuses to delete (``refused``: ``AccessDenied``, the store's clock says it is still locked);
  then a delete marker hides the blob, and the bucket's lifecycle rule removes the locked
  versions when their retention ends (see ``docs/operations.md``). A version under an S3
  legal hold is never deleted: it is reported ``refused`` with the hold named.
* **Legal holds** (:meth:`S3BlobStore.set_legal_hold`): the S3 object legal hold
  (``PutObjectLegalHold``), independent of the retention date, is turned on or off on the
  blob's current version (every version when it is hidden behind a delete marker). While it
  is on, no one can delete the version, whatever its retain-until date says. Vetline turns it
  on for the blobs of records an active legal hold covers and off once no active hold covers
  any record referring to the blob (the reconciliation in
  :mod:`vetline.archive.retention_actions`). Refusals and failures are reported, not raised.

boto3 is used directly rather than through django-storages: django-storages' ``S3Storage`` is a
file-storage API (names, ``open``/``save``) with no per-object Object Lock mode or retain-until
date, no ``PutObjectRetention`` and no version-level deletion, which is everything this backend
needs. Credentials come from boto3's standard chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance or task role).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from vetline.archive.blobs import (
    BlobDeletion,
    BlobError,
    DeletionOutcome,
    LegalHoldChange,
    LegalHoldOutcome,
    check_name,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

logger = logging.getLogger(__name__)

COMPLIANCE: Final = "COMPLIANCE"
_NOT_FOUND: Final = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
_NO_BUCKET: Final = frozenset({"404", "NoSuchBucket", "NotFound"})
_DENIED: Final = frozenset({"403", "AccessDenied", "Forbidden"})
#: What S3 answers when the bucket cannot take a legal hold (no Object Lock): a refusal.
_REFUSED_LOCK: Final = frozenset({"InvalidRequest", "400"})
#: What a request on the current version gets when there is none (missing, or a delete marker;
#: moto answers a missing key with a 500): then the versions are listed and set one by one.
_NO_CURRENT_VERSION: Final = _NOT_FOUND | {"MethodNotAllowed", "405", "500", "InternalError"}
_NO_LEGAL_HOLD: Final = frozenset({"NoSuchObjectLockConfiguration"})
ON: Final[Literal["ON"]] = "ON"
OFF: Final[Literal["OFF"]] = "OFF"


class BucketUnavailable(BlobError):
    """The bucket does not exist, or cannot be reached with the configured credentials."""


class ObjectLockNotEnabled(BlobError):
    """The bucket exists but has no Object Lock: it cannot keep blobs write-once."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def lock_date(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC, rounded *up* to the whole second. S3 reports retain-until dates to
    the second: an unrounded date would look later than the stored one at every re-put, and
    rounding down would shorten the retention asked for."""
    if moment.tzinfo is None:
        raise ValueError("a retain-until date must be timezone-aware")
    moment = moment.astimezone(dt.UTC)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + dt.timedelta(seconds=1)
    return moment


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


class S3BlobStore:
    """Blobs as Object Lock (compliance mode) objects in one bucket, verified on read."""

    legal_hold_supported = True

    def __init__(
        self,
        *,
        client: S3Client,
        bucket: str,
        default_retain_until: Callable[[dt.datetime], dt.datetime],
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        if not bucket:
            raise BlobError("No S3 bucket is configured (VETLINE_S3_BUCKET).")
        self.client = client
        self.bucket = bucket
        self._default_retain_until = default_retain_until
        self._clock = clock

    @classmethod
    def from_config(
        cls,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        default_retain_until: Callable[[dt.datetime], dt.datetime],
    ) -> S3BlobStore:
        options: dict[str, Any] = {
            "connect_timeout": 5,
            "read_timeout": 60,
            "retries": {"max_attempts": 3, "mode": "standard"},
        }
        if endpoint_url:
            # S3-compatible stores (MinIO, Ceph, …) are addressed by path, not by subdomain.
            options["s3"] = {"addressing_style": "path"}
        client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=Config(**options)
        )
        return cls(client=client, bucket=bucket, default_retain_until=default_retain_until)

    @property
    def where(self) -> str:
        return f"s3://{self.bucket} at {self.client.meta.endpoint_url}"

    # ----------------------------------------------------------------------- configuration

    def verify_bucket(self) -> None:
        """Raise :class:`BucketUnavailable` or :class:`ObjectLockNotEnabled` unless the bucket
        exists, can be reached, and has Object Lock enabled."""
        unreachable = f"The blob bucket {self.where} cannot be reached"
        no_lock = (
            f"The blob bucket {self.where} does not have Object Lock enabled: blobs stored there "
            f"could be deleted or overwritten before their retention ends."
        )
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in _NO_BUCKET:
                raise BucketUnavailable(f"The blob bucket {self.where} does not exist.") from exc
            if _code(exc) in _DENIED:
                raise BucketUnavailable(
                    f"Access to the blob bucket {self.where} is denied: check the AWS "
                    f"credentials and the bucket policy."
                ) from exc
            raise BucketUnavailable(f"{unreachable}: {exc}") from exc
        except BotoCoreError as exc:
            raise BucketUnavailable(f"{unreachable}: {exc}") from exc
        try:
            answer = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) == "ObjectLockConfigurationNotFoundError":
                raise ObjectLockNotEnabled(no_lock) from exc
            raise BucketUnavailable(
                f"The Object Lock configuration of {self.where} cannot be read: {exc}"
            ) from exc
        except BotoCoreError as exc:
            raise BucketUnavailable(f"{unreachable}: {exc}") from exc
        if answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise ObjectLockNotEnabled(no_lock)

    # ----------------------------------------------------------------------- the BlobStore API

    def put(self, data: bytes, *, retain_until: dt.datetime | None = None) -> str:
        name = hashlib.sha256(data).hexdigest()
        now = self._clock()
        until = lock_date(retain_until or self._default_retain_until(now))
        head = self._head(name)
        if head is not None:
            if self._holds(name, head):
                self._extend_retention(name, head, until)
                return name
            logger.warning(
                "archive.blob.damaged_rewritten",
                extra={"blob": name, "bucket": self.bucket, "version": head.get("VersionId")},
            )
        self._put_new(name, data, until=until, now=now)
        return name

    def get(self, sha256_hex: str) -> bytes:
        name = check_name(sha256_hex)
        data = self._read(name)
        if hashlib.sha256(data).hexdigest() != name:
            raise BlobError(f"blob {name} is damaged: its bytes no longer match its hash")
        return data

    def exists(self, sha256_hex: str) -> bool:
        return self._head(check_name(sha256_hex)) is not None

    def retention(self, sha256_hex: str) -> tuple[str | None, dt.datetime | None]:
        """The Object Lock mode and retain-until date of the blob's current version."""
        head = self._head(check_name(sha256_hex))
        if head is None:
            raise BlobError(f"blob {sha256_hex} is missing")
        return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")

    def delete(self, sha256_hex: str, *, now: dt.datetime) -> BlobDeletion:
        """Delete every version of the blob whose retention has passed at ``now``. Never raises
        for a locked version, a refusal or an unreachable store: the result says what
        happened. A blob some version of which stays is hidden behind a delete marker."""
        name = check_name(sha256_hex)
        try:
            versions, markers, hidden = self._versions(name)
        except (ClientError, BotoCoreError) as exc:
            return BlobDeletion(
                name, DeletionOutcome.FAILED, detail=f"listing its versions failed: {exc}"
            )
        kept = [r for v in versions if (r := self._delete_version(name, v, now)) is not None]
        if not kept:
            self._delete_markers(name, markers)
            outcome = DeletionOutcome.DELETED if versions else DeletionOutcome.MISSING
            return BlobDeletion(name, outcome)
        detail = "; ".join(k.detail for k in kept)
        if not hidden:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=name)
            except (ClientError, BotoCoreError) as exc:
                detail += f"; placing a delete marker failed: {exc}"
        dates = [k.retained_until for k in kept if k.retained_until is not None]
        return BlobDeletion(
            name, _worst(kept), retained_until=max(dates) if dates else None, detail=detail
        )

    def set_legal_hold(self, sha256_hex: str, on: bool) -> LegalHoldChange:
        """Turn the S3 legal hold of the blob on (``on``) or off. Idempotent; never raises: a
        refusal (``AccessDenied``: the credentials lack ``s3:PutObjectLegalHold``;
        ``InvalidRequest``: the bucket has no Object Lock), a missing blob or an unreachable
        store is reported in the result.

        One request on the current version, which holds the blob's bytes (older versions under
        the name are damaged copies Vetline wrote over). When there is no current version (the
        blob is hidden behind a delete marker, e.g. disposal tried to delete it between a
        release and this call, or it is missing), every stored version is listed and set."""
        name = check_name(sha256_hex)
        status: Literal["ON", "OFF"] = ON if on else OFF
        try:
            self.client.put_object_legal_hold(
                Bucket=self.bucket, Key=name, LegalHold={"Status": status}
            )
        except ClientError as exc:
            code = _code(exc)
            if code in _DENIED or code in _REFUSED_LOCK:
                return self._refused(name, on, status, "its current version", code)
            if code not in _NO_CURRENT_VERSION:
                return LegalHoldChange(name, on, LegalHoldOutcome.FAILED, detail=str(exc))
            return self._set_legal_hold_on_versions(name, on, status)
        except BotoCoreError as exc:
            return LegalHoldChange(name, on, LegalHoldOutcome.FAILED, detail=str(exc))
        logger.info("archive.blob.legal_hold_set", extra={"blob": name, "status": status})
        return LegalHoldChange(name, on, LegalHoldOutcome.APPLIED)

    def _refused(
        self, name: str, on: bool, status: str, version: str, code: str
    ) -> LegalHoldChange:
        return LegalHoldChange(
            name,
            on,
            LegalHoldOutcome.REFUSED,
            detail=f"the store refused to turn the legal hold {status} on {version} ({code}): "
            f"the credentials need s3:PutObjectLegalHold and the bucket Object Lock",
        )

    def _set_legal_hold_on_versions(
        self, name: str, on: bool, status: Literal["ON", "OFF"]
    ) -> LegalHoldChange:
        try:
            versions, _, _ = self._versions(name)
        except (ClientError, BotoCoreError) as exc:
            return LegalHoldChange(
                name, on, LegalHoldOutcome.FAILED, detail=f"listing its versions failed: {exc}"
            )
        if not versions:
            return LegalHoldChange(
                name, on, LegalHoldOutcome.MISSING, detail=f"the blob is not in {self.where}"
            )
        for version in versions:
            try:
                self.client.put_object_legal_hold(
                    Bucket=self.bucket,
                    Key=name,
                    VersionId=version,
                    LegalHold={"Status": status},
                )
            except ClientError as exc:
                code = _code(exc)
                if code in _NOT_FOUND:
                    continue  # the version went meanwhile (its retention passed)
                if code in _DENIED or code in _REFUSED_LOCK:
                    return self._refused(name, on, status, f"version {version}", code)
                return LegalHoldChange(
                    name, on, LegalHoldOutcome.FAILED, detail=f"version {version}: {exc}"
                )
            except BotoCoreError as exc:
                return LegalHoldChange(
                    name, on, LegalHoldOutcome.FAILED, detail=f"version {version}: {exc}"
                )
        logger.info(
            "archive.blob.legal_hold_set",
            extra={"blob": name, "status": status, "versions": len(versions)},
        )
        return LegalHoldChange(name, on, LegalHoldOutcome.APPLIED)

    def get_object_legal_hold(self, sha256_hex: str, version_id: str | None = None) -> bool:
        """Whether the blob's current version (or ``version_id``) has the S3 legal hold on.
        Raises :class:`BlobError` when the blob is missing or the store cannot be asked."""
        name = check_name(sha256_hex)
        options: dict[str, Any] = {"VersionId": version_id} if version_id else {}
        try:
            answer = self.client.get_object_legal_hold(Bucket=self.bucket, Key=name, **options)
        except ClientError as exc:
            if _code(exc) in _NO_LEGAL_HOLD:
                return False  # never set on this version
            if _code(exc) in _NOT_FOUND:
                raise BlobError(f"blob {name} is missing") from exc
            raise BlobError(f"could not read the legal hold of blob {name}: {exc}") from exc
        except BotoCoreError as exc:
            raise BlobError(f"could not read the legal hold of blob {name}: {exc}") from exc
        return answer.get("LegalHold", {}).get("Status") == ON

    # ----------------------------------------------------------------------- internals

    def _head(self, name: str) -> HeadObjectOutputTypeDef | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=name, ChecksumMode="ENABLED")
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise BlobError(f"could not look up blob {name} in {self.where}: {exc}") from exc
        except BotoCoreError as exc:
            raise BlobError(f"could not look up blob {name} in {self.where}: {exc}") from exc

    def _read(self, name: str, version_id: str | None = None) -> bytes:
        try:
            if version_id is None:
                answer = self.client.get_object(Bucket=self.bucket, Key=name)
            else:
                answer = self.client.get_object(Bucket=self.bucket, Key=name, VersionId=version_id)
            return answer["Body"].read()
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise BlobError(f"blob {name} is missing") from exc
            raise BlobError(f"could not read blob {name} from {self.where}: {exc}") from exc
        except BotoCoreError as exc:
            # Includes FlexibleChecksumError: the bytes do not match the checksum S3 stored.
            raise BlobError(f"could not read blob {name} from {self.where}: {exc}") from exc

    def _holds(self, name: str, head: HeadObjectOutputTypeDef) -> bool:
        """Whether the current version under ``name`` has the bytes ``name`` promises. S3
        computed and verified the SHA-256 checksum at upload, so it is trusted when present;
        objects written without one are read back and hashed."""
        expected = _b64(bytes.fromhex(name))
        checksum = head.get("ChecksumSHA256")
        if checksum is not None and "-" not in checksum:
            return checksum == expected
        data = self._read(name, head.get("VersionId"))
        return hashlib.sha256(data).hexdigest() == name

    def _extend_retention(
        self, name: str, head: HeadObjectOutputTypeDef, until: dt.datetime
    ) -> None:
        current = head.get("ObjectLockRetainUntilDate")
        if head.get("ObjectLockMode") == COMPLIANCE and current is not None and current >= until:
            return
        if until <= self._clock():
            return  # nothing left to lock
        version = head.get("VersionId")
        if not version:
            raise BlobError(f"{self.where} is not versioned: it cannot have Object Lock")
        # Compliance mode lets a date move later, never earlier; max() keeps a later date that a
        # governance-mode lock may have had.
        new_until = max(until, current) if current is not None else until
        try:
            self.client.put_object_retention(
                Bucket=self.bucket,
                Key=name,
                VersionId=version,
                Retention={"Mode": COMPLIANCE, "RetainUntilDate": new_until},
            )
        except (ClientError, BotoCoreError) as exc:
            raise BlobError(f"could not extend the retention of blob {name}: {exc}") from exc
        logger.info(
            "archive.blob.retention_extended",
            extra={"blob": name, "from": current, "until": new_until},
        )

    def _put_new(self, name: str, data: bytes, *, until: dt.datetime, now: dt.datetime) -> None:
        digest = hashlib.sha256(data).digest()
        md5 = _b64(hashlib.md5(data, usedforsecurity=False).digest())
        try:
            if until > now:
                # Content-MD5 as well as the SHA-256 checksum: some S3-compatible stores still
                # require it for a write with an Object Lock retention.
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=name,
                    Body=data,
                    ContentType="application/octet-stream",
                    ContentMD5=md5,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=_b64(digest),
                    ObjectLockMode=COMPLIANCE,
                    ObjectLockRetainUntilDate=until,
                )
            else:
                # A lock must end in the future: a blob whose retention has already passed (a
                # backfill of old records) is stored without one.
                logger.warning("archive.blob.stored_unlocked", extra={"blob": name, "until": until})
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=name,
                    Body=data,
                    ContentType="application/octet-stream",
                    ContentMD5=md5,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=_b64(digest),
                )
        except (ClientError, BotoCoreError) as exc:
            raise BlobError(f"could not store blob {name} in {self.where}: {exc}") from exc

    def _versions(self, name: str) -> tuple[list[str], list[str], bool]:
        """Version ids of the objects and of the delete markers under ``name``, and whether a
        delete marker is the current version (the blob is hidden)."""
        versions: list[str] = []
        markers: list[str] = []
        hidden = False
        pages = self.client.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=name
        )
        for page in pages:
            versions += [
                v["VersionId"]
                for v in page.get("Versions", [])
                if v.get("Key") == name and "VersionId" in v
            ]
            markers += [
                m["VersionId"]
                for m in page.get("DeleteMarkers", [])
                if m.get("Key") == name and "VersionId" in m
            ]
            hidden = hidden or any(
                m.get("Key") == name and m.get("IsLatest") for m in page.get("DeleteMarkers", [])
            )
        return versions, markers, hidden

    def _delete_version(self, name: str, version: str, now: dt.datetime) -> BlobDeletion | None:
        """Delete one version if its retention has passed; None once it is gone."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=name, VersionId=version)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            return BlobDeletion(name, DeletionOutcome.FAILED, detail=f"version {version}: {exc}")
        except BotoCoreError as exc:
            return BlobDeletion(name, DeletionOutcome.FAILED, detail=f"version {version}: {exc}")
        until = head.get("ObjectLockRetainUntilDate")
        mode = head.get("ObjectLockMode")
        if head.get("ObjectLockLegalHoldStatus") == ON:
            return BlobDeletion(
                name,
                DeletionOutcome.REFUSED,
                retained_until=until,
                detail=f"version {version} is under an S3 legal hold (a Vetline legal hold covers "
                f"a record referring to it, or did until the last reconciliation): it cannot be "
                f"deleted until the hold is turned off",
            )
        if until is not None and until > now:
            return BlobDeletion(
                name,
                DeletionOutcome.RETAINED,
                retained_until=until,
                detail=f"version {version} is locked ({mode}) until {until.isoformat()}",
            )
        try:
            self.client.delete_object(Bucket=self.bucket, Key=name, VersionId=version)
        except ClientError as exc:
            if _code(exc) in _DENIED:
                return BlobDeletion(
                    name,
                    DeletionOutcome.REFUSED,
                    retained_until=until,
                    detail=f"the store refused to delete version {version} ({_code(exc)}): it "
                    f"is still locked ({mode} until "
                    f"{until.isoformat() if until else 'unknown'}) or the credentials lack "
                    f"s3:DeleteObjectVersion",
                )
            return BlobDeletion(name, DeletionOutcome.FAILED, detail=f"version {version}: {exc}")
        except BotoCoreError as exc:
            return BlobDeletion(name, DeletionOutcome.FAILED, detail=f"version {version}: {exc}")
        logger.info("archive.blob.version_deleted", extra={"blob": name, "version": version})
        return None

    def _delete_markers(self, name: str, markers: list[str]) -> None:
        for marker in markers:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=name, VersionId=marker)
            except (ClientError, BotoCoreError) as exc:
                # Harmless: a marker over nothing only costs a listing entry.
                logger.warning("archive.blob.marker_kept", extra={"blob": name, "error": str(exc)})


_SEVERITY: Final = (DeletionOutcome.FAILED, DeletionOutcome.REFUSED, DeletionOutcome.RETAINED)


def _worst(kept: list[BlobDeletion]) -> DeletionOutcome:
    outcomes = {k.outcome for k in kept}
    return next(o for o in _SEVERITY if o in outcomes)
