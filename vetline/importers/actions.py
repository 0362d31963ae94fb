"""Importing a platform's data export into the archive, now (CLI) or as a background job (UI,
API). Every import goes through the archive's single ingest path in batches, and is audited:
``importers.import.start``, then ``importers.import.done`` (counts, where reading stopped) or
``importers.import.fail``. An upload started from the UI or the API is queued as
``importers.import.queue``.

A job has a declared lifecycle (:data:`TRANSITIONS`). Like the archive's export jobs its record
is a small JSON file, ``<imports root>/<id>/job.json``, next to the uploaded file (operational
state, not archive content); progress goes to the cache for the polling page. Re-running a job
after a crash reads the file again from the start: ingest is idempotent, so what was archived
before the crash comes back as duplicates and nothing is archived twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from vetline.archive.items import ItemError, clean_item, parse_raw, raw_bytes_of
from vetline.audit.actions import record as audit
from vetline.core.errors import NotFound, ValidationFailed
from vetline.identity.permissions import require
from vetline.identity.roles import Perm
from vetline.importers.formats import FORMATS
from vetline.importers.formats.base import Entry, Owner, ReadReport, Source

if TYPE_CHECKING:
    from vetline.accounts.models import SocialAccount
    from vetline.identity.models import Person

logger = logging.getLogger(__name__)

OBJECT_TYPE: Final = "importers.import"
BATCH_SIZE: Final = 1000
MAX_PROBLEMS: Final = 200  # per-entry problems kept in the report (all are in the quarantine)
MAX_MEDIA_BYTES: Final = 100 * 1024 * 1024
CACHE_SECONDS: Final = 7 * 24 * 3600
_ID_RE: Final = re.compile(r"[0-9a-f]{32}")
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes total)


# --------------------------------------------------------------------------- import now


@dataclass
class ImportResult:
    format: str
    file_name: str
    counts: dict[str, int] = field(default_factory=dict)
    stops: list[str] = field(default_factory=list)
    not_archived: dict[str, int] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        c = self.counts
        line = (
            f"{c.get('entries', 0):,} entries: {c.get('ingested', 0):,} archived, "
            f"{c.get('duplicates', 0):,} duplicates, {c.get('quarantined', 0):,} quarantined"
        )
        if c.get("already_quarantined"):
            line += f", {c['already_quarantined']:,} already in quarantine from an earlier import"
        return line


def _owner_for(account: SocialAccount) -> Owner:
    return Owner(handle=account.handle, display_name=account.display_name)


def _check(actor: Person | None, account: SocialAccount, fmt: str) -> None:
    if actor is not None:
        require(actor, Perm.ACCOUNTS_MANAGE)
        from vetline.accounts.selectors import get_visible_account

        get_visible_account(actor, account.pk)
    spec = FORMATS.get(fmt)
    if spec is None:
        raise ValidationFailed(
            f"Unknown format {fmt[:40]!r}; one of: {', '.join(FORMATS)}.", field="format"
        )
    if account.network != spec.network:
        raise ValidationFailed(
            f"A {spec.label} goes into a {spec.network} account, not a {account.network} one.",
            field="account",
        )


def _known_quarantine(account: SocialAccount, source: str) -> set[str]:
    """SHA-256 of what an earlier import of this file left in quarantine, so importing the same
    file again does not quarantine the same entries twice."""
    from vetline.archive.models import QuarantinedItem, QuarantineStatus

    rows = QuarantinedItem.objects.filter(
        account=account, source=source, status=QuarantineStatus.QUARANTINED
    ).values_list("raw", flat=True)
    return {hashlib.sha256(bytes(raw)).hexdigest() for raw in rows.iterator(chunk_size=500)}


def _would_quarantine_as(entry: Entry) -> bytes | None:
    """The bytes ingest would quarantine for this entry, or None if it would accept it."""
    try:
        if entry.item is None:
            clean_item(parse_raw(entry.raw), received=entry.raw)
        else:
            clean_item(entry.item)
    except ItemError:
        return entry.raw if entry.item is None else raw_bytes_of(entry.item)
    return None


def _media_store(source: Source) -> Callable[[str], str | None]:
    from vetline.archive.blobs import default_store

    store = default_store()

    def put(name: str) -> str | None:
        try:
            if source.size(name) > MAX_MEDIA_BYTES:
                return None
            with source.open(name) as fh:
                return store.put(fh.read())
        except (KeyError, OSError, ValueError):
            logger.warning("importers.media.unreadable", extra={"member": name})
            return None

    return put


def import_file(
    *,
    actor: Person | None,
    account: SocialAccount,
    fmt: str,
    path: Path,
    file_name: str = "",
    batch_size: int = BATCH_SIZE,
    screen: bool | None = None,
    media: bool = True,
    progress: ProgressCallback | None = None,
    import_id: str = "",
) -> ImportResult:
    """Import the export at ``path`` (a zip, tar, folder or single file) into ``account``.

    Streams: entries go to ingest in batches of ``batch_size``; memory is bounded by a batch and
    the largest single entry. A file that is truncated or corrupt is imported up to where it
    can be read and the stop is reported (``ImportResult.stops``), never silently. ``actor``
    None is the operator at the command line (audited as the system)."""
    from vetline.archive.actions import ingest_batch

    _check(actor, account, fmt)
    spec = FORMATS[fmt]
    file_name = (file_name or path.name)[:200]
    source_label = f"import:{fmt}:{file_name}"[:100]
    result = ImportResult(format=fmt, file_name=file_name)
    counts = dict.fromkeys(
        ("entries", "received", "ingested", "duplicates", "quarantined", "conflicts"), 0
    )
    counts["already_quarantined"] = 0
    done = [0, 0]  # bytes done, total

    def advance(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(min(done[0], done[1]), done[1])

    try:
        source = Source(path, progress=advance)
    except (FileNotFoundError, OSError) as exc:
        raise ValidationFailed(f"Cannot read {file_name}: {exc}", field="file") from exc
    members = spec.members(source)
    done[1] = max(1, sum(source.size(m) for m in members) * spec.passes)
    with transaction.atomic():
        audit(
            action="importers.import.start",
            actor=actor,
            obj=account,
            after={
                "import_id": import_id,
                "format": fmt,
                "file": file_name,
                "bytes": path.stat().st_size if path.is_file() else done[1],
                "members": members[:50],
            },
        )
    known = _known_quarantine(account, source_label)
    report = ReadReport()
    batch: list[Entry] = []

    def flush() -> None:
        if not batch:
            return
        ingest = ingest_batch(
            items=[e.item if e.item is not None else e.raw for e in batch],
            account=account,
            source=source_label,
            actor=actor,
            screen=screen,
        )
        for key in ("received", "ingested", "duplicates", "quarantined", "conflicts"):
            counts[key] += getattr(ingest, key)
        for r in ingest.items:
            if r.status == "quarantined" and len(result.problems) < MAX_PROBLEMS:
                entry = batch[r.position]
                result.problems.append(
                    {
                        "where": entry.where,
                        "reason_code": r.reason_code,
                        "reason": r.reason,
                        "note": entry.note,
                        "quarantine_id": r.quarantine_id,
                    }
                )
        batch.clear()

    try:
        if not members:
            raise ValidationFailed(
                f"{file_name} holds none of the files of a {spec.label}. Is it the right "
                "export? A zip that is cut short (no central directory) cannot be opened.",
                field="file",
            )
        store_media = _media_store(source) if media else None
        for entry in spec.read(source, _owner_for(account), report, store_media):
            counts["entries"] += 1
            if known:
                bad = _would_quarantine_as(entry)
                if bad is not None and hashlib.sha256(bad).hexdigest() in known:
                    counts["already_quarantined"] += 1
                    continue
            batch.append(entry)
            if len(batch) >= batch_size:
                flush()
        flush()
    except Exception as exc:
        with transaction.atomic():
            audit(
                action="importers.import.fail",
                actor=actor,
                obj=account,
                after={
                    "import_id": import_id,
                    "format": fmt,
                    "file": file_name,
                    "error": f"{type(exc).__name__}: {exc}"[:500],
                    **counts,
                },
            )
        raise
    finally:
        source.close()
    result.counts = counts
    result.stops = report.stops
    result.not_archived = report.not_archived
    with transaction.atomic():
        audit(
            action="importers.import.done",
            actor=actor,
            obj=account,
            after={
                "import_id": import_id,
                "format": fmt,
                "file": file_name,
                **counts,
                "stops": report.stops[:20],
                "not_archived": report.not_archived,
            },
        )
    logger.info(
        "importers.import.done",
        extra={"account": account.pk, "format": fmt, "stops": len(report.stops), **counts},
    )
    return result


# --------------------------------------------------------------------------- background jobs


class ImportState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


TRANSITIONS: Final[dict[ImportState, frozenset[ImportState]]] = {
    ImportState.QUEUED: frozenset({ImportState.RUNNING, ImportState.FAILED}),
    # RUNNING -> RUNNING: a job re-run after a crash reads the file again (ingest dedupes).
    ImportState.RUNNING: frozenset({ImportState.RUNNING, ImportState.DONE, ImportState.FAILED}),
    ImportState.DONE: frozenset(),
    ImportState.FAILED: frozenset(),
}


class TransitionError(RuntimeError):
    """An import job was asked to move along a transition that is not declared."""


@dataclass
class ImportJob:
    id: str
    owner_id: int
    account_id: int
    format: str
    file_name: str
    state: str = ImportState.QUEUED
    created_at: str = ""
    finished_at: str = ""
    size: int = 0
    done: int = 0  # bytes read
    total: int = 0
    error: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    stops: list[str] = field(default_factory=list)
    not_archived: dict[str, int] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def percent(self) -> int:
        if self.state == ImportState.DONE:
            return 100
        return min(99, self.done * 100 // self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.state in (ImportState.DONE, ImportState.FAILED)

    def move_to(self, state: ImportState) -> None:
        current = ImportState(self.state)
        if state not in TRANSITIONS[current]:
            raise TransitionError(f"import {self.id}: {current} -> {state} is not allowed")
        self.state = state


def imports_root() -> Path:
    configured = getattr(settings, "VETLINE_IMPORT_DIR", "")
    return Path(configured) if configured else Path(settings.DATA_DIR) / "imports"


def job_dir(import_id: str) -> Path:
    if not _ID_RE.fullmatch(import_id):
        raise NotFound("No such import.")
    return imports_root() / import_id


def _cache_key(import_id: str) -> str:
    return f"importers.progress.{import_id}"


def _save(job: ImportJob) -> None:
    path = job_dir(job.id) / "job.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(job), sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    _publish(job)


def _publish(job: ImportJob) -> None:
    cache.set(
        _cache_key(job.id),
        {"state": job.state, "done": job.done, "total": job.total},
        CACHE_SECONDS,
    )


def load_job(import_id: str) -> ImportJob | None:
    try:
        data = json.loads((job_dir(import_id) / "job.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    job = ImportJob(**data)
    live = cache.get(_cache_key(import_id))
    if isinstance(live, dict) and job.state == live.get("state"):
        job.done = int(live.get("done", job.done))
        job.total = int(live.get("total", job.total))
    return job


def _upload_path(job: ImportJob) -> Path:
    return job_dir(job.id) / ("upload-" + (_SAFE_NAME.sub("_", job.file_name)[-80:] or "file"))


def start_import(
    *,
    actor: Person,
    account_id: int,
    fmt: str,
    file_name: str,
    chunks: Iterable[bytes] | None = None,
    uploaded_path: Path | None = None,
) -> ImportJob:
    """Check the right to import into the account, store the upload under the data directory
    (``uploaded_path`` is moved there; otherwise ``chunks`` are written), audit, and queue the
    job after commit."""
    from vetline.accounts.selectors import get_visible_account
    from vetline.importers.tasks import run_import_task

    require(actor, Perm.ACCOUNTS_MANAGE)
    account = get_visible_account(actor, account_id)
    _check(actor, account, fmt)
    job = ImportJob(
        id=secrets.token_hex(16),
        owner_id=actor.pk,
        account_id=account.pk,
        format=fmt,
        file_name=(Path(file_name).name or "upload")[:200],
        created_at=timezone.now().isoformat(),
    )
    target = _upload_path(job)
    target.parent.mkdir(parents=True, exist_ok=True)
    if uploaded_path is not None:
        shutil.move(str(uploaded_path), target)
    else:
        with target.open("wb") as fh:
            for chunk in chunks or ():
                fh.write(chunk)
    job.size = job.total = target.stat().st_size
    _save(job)
    with transaction.atomic():
        audit(
            action="importers.import.queue",
            actor=actor,
            obj=account,
            after={"import_id": job.id, "format": fmt, "file": job.file_name, "bytes": job.size},
        )
        transaction.on_commit(lambda: run_import_task(job.id))
    return job


def run_import(*, import_id: str) -> ImportJob:
    """The job: import the uploaded file as its owner, then record the outcome. Re-runnable."""
    from vetline.accounts.models import SocialAccount
    from vetline.core.errors import DomainError
    from vetline.identity.models import Person

    job = load_job(import_id)
    if job is None:
        raise NotFound("No such import.")
    if job.finished:
        return job
    job.move_to(ImportState.RUNNING)
    job.done, job.error = 0, ""
    _save(job)
    owner = Person.objects.filter(pk=job.owner_id).first()
    account = SocialAccount.objects.filter(pk=job.account_id).first()
    last = [0]

    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total
        if done - last[0] >= max(1, total // 100):
            last[0] = done
            _publish(job)

    try:
        if owner is None or account is None:
            raise NotFound("The person or the account of this import no longer exists.")
        result = import_file(
            actor=owner,
            account=account,
            fmt=job.format,
            path=_upload_path(job),
            file_name=job.file_name,
            progress=progress,
            import_id=job.id,
        )
    except Exception as exc:
        if not isinstance(exc, DomainError):
            logger.exception("importers.import.failed", extra={"import_id": import_id})
        job.move_to(ImportState.FAILED)
        job.error = (getattr(exc, "message", "") or str(exc) or type(exc).__name__)[:500]
        job.finished_at = timezone.now().isoformat()
        _save(job)
        return job
    job.move_to(ImportState.DONE)
    job.counts = result.counts
    job.stops = result.stops
    job.not_archived = result.not_archived
    job.problems = result.problems
    job.done = job.total
    job.finished_at = timezone.now().isoformat()
    _save(job)
    _upload_path(job).unlink(missing_ok=True)  # everything is in the archive now
    return job


def get_import(*, actor: Person, import_id: str) -> ImportJob:
    """The import, for the person who started it (anyone else: not found)."""
    require(actor, Perm.ACCOUNTS_MANAGE)
    job = load_job(import_id)
    if job is None or job.owner_id != actor.pk:
        raise NotFound("No such import.")
    return job


def job_as_dict(job: ImportJob) -> Mapping[str, Any]:
    return {**asdict(job), "percent": job.percent}
