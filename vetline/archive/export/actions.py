"""Starting, running and downloading exports. Every export is audited:
``archive.export.start`` (the selection), ``archive.export.done`` (counts and the manifest's
SHA-256) or ``archive.export.fail``, and ``archive.export.download``.

An export started from the UI or the API is a job with a declared lifecycle
(:data:`TRANSITIONS`). Its record is a small JSON file next to the package,
``<exports root>/<id>/job.json`` (no database model: the archive's tables are append-only and
the job is operational state); progress goes to the cache for the polling page. The job is
idempotent: running it again after a crash rebuilds the package from scratch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from vetline.archive.export.package import (
    PASSES,
    PackageResult,
    Progress,
    build_package,
    no_progress,
    zip_package,
)
from vetline.archive.export.selection import Selection, selection_from_dict
from vetline.audit.actions import record as audit
from vetline.core.errors import Conflict, NotFound
from vetline.identity.permissions import require
from vetline.identity.roles import Perm

if TYPE_CHECKING:
    from vetline.identity.models import Person

logger = logging.getLogger(__name__)

OBJECT_TYPE: Final = "archive.export"
CACHE_SECONDS: Final = 7 * 24 * 3600
_ID_RE: Final = re.compile(r"[0-9a-f]{32}")


class ExportState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


TRANSITIONS: Final[dict[ExportState, frozenset[ExportState]]] = {
    ExportState.QUEUED: frozenset({ExportState.RUNNING, ExportState.FAILED}),
    # RUNNING -> RUNNING: a job re-run after a crash starts over.
    ExportState.RUNNING: frozenset({ExportState.RUNNING, ExportState.DONE, ExportState.FAILED}),
    ExportState.DONE: frozenset(),
    ExportState.FAILED: frozenset(),
}


class TransitionError(RuntimeError):
    """An export job was asked to move along a transition that is not declared."""


@dataclass
class ExportJob:
    id: str
    owner_id: int
    selection: dict[str, Any]
    state: str = ExportState.QUEUED
    created_at: str = ""
    finished_at: str = ""
    total: int = 0  # record visits (records x passes)
    done: int = 0
    phase: str = ""
    error: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    manifest_sha256: str = ""
    zip_name: str = ""
    zip_sha256: str = ""

    @property
    def percent(self) -> int:
        if self.state == ExportState.DONE:
            return 100
        return min(99, self.done * 100 // self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.state in (ExportState.DONE, ExportState.FAILED)

    def move_to(self, state: ExportState) -> None:
        current = ExportState(self.state)
        if state not in TRANSITIONS[current]:
            raise TransitionError(f"export {self.id}: {current} -> {state} is not allowed")
        self.state = state


def exports_root() -> Path:
    configured = getattr(settings, "VETLINE_EXPORT_DIR", "")
    return Path(configured) if configured else Path(settings.DATA_DIR) / "exports"


def job_dir(export_id: str) -> Path:
    if not _ID_RE.fullmatch(export_id):
        raise NotFound("No such export.")
    return exports_root() / export_id


def _cache_key(export_id: str) -> str:
    return f"archive.export.progress.{export_id}"


def _save(job: ExportJob) -> None:
    path = job_dir(job.id) / "job.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(job), sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    _publish(job)


def _publish(job: ExportJob) -> None:
    cache.set(
        _cache_key(job.id),
        {"state": job.state, "done": job.done, "total": job.total, "phase": job.phase},
        CACHE_SECONDS,
    )


def load_job(export_id: str) -> ExportJob | None:
    path = job_dir(export_id) / "job.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    job = ExportJob(**data)
    live = cache.get(_cache_key(export_id))
    if isinstance(live, dict) and job.state == live.get("state"):
        job.done = int(live.get("done", job.done))
        job.phase = str(live.get("phase", job.phase))
    return job


def _audit_start(actor: Person | None, export_id: str, selection: Selection, total: int) -> None:
    with transaction.atomic():
        audit(
            action="archive.export.start",
            actor=actor,
            object_type=OBJECT_TYPE,
            object_id=export_id,
            object_repr=f"archive export {export_id}",
            after={"export_id": export_id, "selection": selection.as_dict(), "records": total},
        )


def _audit_done(actor: Person | None, export_id: str, result: PackageResult, **extra: str) -> None:
    with transaction.atomic():
        audit(
            action="archive.export.done",
            actor=actor,
            object_type=OBJECT_TYPE,
            object_id=export_id,
            object_repr=f"archive export {export_id}",
            after={
                "export_id": export_id,
                **result.counts(),
                "manifest_sha256": result.manifest_sha256,
                **extra,
            },
        )


def new_export_id() -> str:
    return secrets.token_hex(16)


def export_to_directory(
    *,
    actor: Person | None,
    selection: Selection,
    out_dir: Path,
    progress: Progress | None = None,
) -> PackageResult:
    """Export ``selection`` into ``out_dir`` right now (the CLI). ``actor`` None is the
    operator at the command line, audited as the system."""
    if actor is not None:
        require(actor, Perm.ARCHIVE_EXPORT)
    export_id = new_export_id()
    qs = selection.queryset()
    _audit_start(actor, export_id, selection, qs.count())
    result = build_package(qs, out_dir, progress=progress or no_progress)
    _audit_done(actor, export_id, result)
    return result


def start_export(*, actor: Person, selection: Selection) -> ExportJob:
    """Check the right to export, audit the start, and queue the job (after commit)."""
    from vetline.archive.export.tasks import run_export_task

    require(actor, Perm.ARCHIVE_EXPORT)
    export_id = new_export_id()
    total = selection.queryset().count()
    job = ExportJob(
        id=export_id,
        owner_id=actor.pk,
        selection=selection.as_dict(),
        created_at=timezone.now().isoformat(),
        total=total * PASSES,
    )
    _save(job)
    _audit_start(actor, export_id, selection, total)
    transaction.on_commit(lambda: run_export_task(export_id))
    return job


def run_export(*, export_id: str) -> ExportJob:
    """The job: build the package and its zip, then audit the result. Re-runnable."""
    from vetline.identity.models import Person

    job = load_job(export_id)
    if job is None:
        raise NotFound("No such export.")
    if job.finished:
        return job
    job.move_to(ExportState.RUNNING)
    job.done, job.phase, job.error = 0, "starting", ""
    _save(job)
    base = job_dir(export_id)
    package_dir = base / "package"
    shutil.rmtree(package_dir, ignore_errors=True)
    owner = Person.objects.filter(pk=job.owner_id).first()
    last_published = [0]

    def progress(phase: str, advance: int) -> None:
        job.done += advance
        job.phase = phase
        step = max(1, job.total // 100)
        if job.done - last_published[0] >= step:
            last_published[0] = job.done
            _publish(job)

    try:
        selection = selection_from_dict(job.selection)
        result = build_package(selection.queryset(), package_dir, progress=progress)
        job.phase = "zip"
        _publish(job)
        zip_name = f"vetline-export-{export_id}.zip"
        zip_path = zip_package(package_dir, base / zip_name)
        zip_sha256 = _sha256(zip_path)
    except Exception as exc:
        logger.exception("archive.export.failed", extra={"export_id": export_id})
        job.move_to(ExportState.FAILED)
        job.error = str(exc)[:500] or type(exc).__name__
        job.finished_at = timezone.now().isoformat()
        _save(job)
        with transaction.atomic():
            audit(
                action="archive.export.fail",
                actor=owner,
                object_type=OBJECT_TYPE,
                object_id=export_id,
                object_repr=f"archive export {export_id}",
                after={"export_id": export_id, "error": job.error},
            )
        return job
    shutil.rmtree(package_dir, ignore_errors=True)  # the zip holds it
    _audit_done(owner, export_id, result, zip_sha256=zip_sha256)
    job.move_to(ExportState.DONE)
    job.counts = result.counts()
    job.manifest_sha256 = result.manifest_sha256
    job.zip_name = zip_name
    job.zip_sha256 = zip_sha256
    job.finished_at = timezone.now().isoformat()
    _save(job)
    logger.info("archive.export.done", extra={"export_id": export_id, **job.counts})
    return job


def get_export(*, actor: Person, export_id: str) -> ExportJob:
    """The export, for the person who started it (anyone else: not found)."""
    require(actor, Perm.ARCHIVE_EXPORT)
    job = load_job(export_id)
    if job is None or job.owner_id != actor.pk:
        raise NotFound("No such export.")
    return job


def open_download(*, actor: Person, export_id: str) -> Path:
    """Check again that ``actor`` may export and started this export, audit the download,
    and return the zip's path."""
    job = get_export(actor=actor, export_id=export_id)
    if job.state != ExportState.DONE or not job.zip_name:
        raise Conflict("The export is not finished.", code="export_not_ready")
    path = job_dir(export_id) / job.zip_name
    if not path.is_file():
        raise NotFound("The export's file is no longer available.")
    with transaction.atomic():
        audit(
            action="archive.export.download",
            actor=actor,
            object_type=OBJECT_TYPE,
            object_id=export_id,
            object_repr=f"archive export {export_id}",
            after={"export_id": export_id, "zip_sha256": job.zip_sha256},
        )
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
