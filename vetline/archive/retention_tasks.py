"""Retention jobs (registered by the last line of ``archive/tasks.py``): the daily disposal job,
and the reconciliation of the blob store's legal holds (after every hold change, after ingest
while a hold is active, and hourly as a catch-up)."""

from __future__ import annotations

import logging
from typing import Any

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from vetline.archive.signals import Kick
from vetline.core.context import RequestContext, use_context

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(hour="2", minute="41"))
def dispose_expired_job() -> int:
    """Dispose of the content of expired, unheld records; the run and its report are stored
    and audited (``archive.disposal.run``). Safe to re-run: disposed records are skipped."""
    from vetline.archive.retention_actions import dispose_expired

    with use_context(RequestContext(channel="job")):
        report = dispose_expired(trigger="job")
    logger.info(
        "archive.disposal.job",
        extra={"run": report.run_id, "disposed": report.disposed, "held": report.held_skipped},
    )
    return report.disposed


def _sync(trigger: str) -> int | None:
    from vetline.archive.retention_actions import sync_blob_legal_holds

    with use_context(RequestContext(channel="job")):
        run = sync_blob_legal_holds(trigger=trigger)
    return None if run is None else run.pk


@db_task()
def sync_blob_legal_holds_task(trigger: str = "ingest") -> int | None:
    """Reconcile the blob store's legal holds now (queued after a hold change or an ingest).
    No task lock: a run already in progress is asked to go round again instead, so no kick is
    lost (see :func:`vetline.archive.retention_actions.sync_blob_legal_holds`)."""
    return _sync(trigger)


@db_periodic_task(crontab(minute="23"))
def sync_blob_legal_holds_job() -> int | None:
    """Hourly catch-up: kicks lost in a crash, custodians' newly registered accounts, blobs the
    store refused last time (retried; persistent failures alert compliance)."""
    return _sync("job")


#: At most one reconciliation is queued per this many seconds by ingest's kicks: each run
#: recomputes every held record's blobs, so a burst of batches must not queue one run each.
KICK_WINDOW_SECONDS = 60
_kick = Kick(sync_blob_legal_holds_task, window_seconds=KICK_WINDOW_SECONDS)


def on_records_archived(sender: Any, **kwargs: Any) -> None:
    """Receiver of ``records_archived``: new records may fall inside an active hold. A kick
    only (quick, never raising), and only while some hold is active."""
    try:
        from vetline.archive.models_retention import LegalHold

        if LegalHold.objects.filter(released_at__isnull=True).exists():
            _kick()
    except Exception:
        logger.exception("archive.blob_holds.kick_failed")
