"""Background jobs of the supervision desk: following new archived records (kicked by
``records_archived`` and caught up periodically), retroactive runs, and scheduled samples.
Jobs take ids and are idempotent; each re-reads and locks its rows."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from vetline.archive.signals import Kick
from vetline.core.context import RequestContext, use_context

logger = logging.getLogger(__name__)


@db_task()
@lock_task("supervision-flags")
def follow_records_task() -> int:
    """Screen and queue every record archived since the cursor."""
    from vetline.supervision.actions import process_new_records

    with use_context(RequestContext(channel="job")):
        return process_new_records()


@db_periodic_task(crontab(minute="*/5"))
def follow_records_catch_up() -> int:
    """Catch up on records whose kick was lost (a crash between commit and signal)."""
    from huey.exceptions import TaskLockedException

    from vetline.supervision.actions import process_new_records

    try:
        with lock_task("supervision-flags"), use_context(RequestContext(channel="job")):
            return process_new_records()
    except TaskLockedException:
        return 0


@db_task()
def retro_run_task(run_id: int) -> str:
    from vetline.supervision.actions import run_retro

    with use_context(RequestContext(channel="job")):
        return run_retro(run_id=run_id).state


@db_periodic_task(crontab(minute="30", hour="0"))
def sample_plans_job() -> int:
    """Sample every active plan for its last complete period (daily, weekly or monthly)."""
    from vetline.supervision.actions import run_due_plans

    with use_context(RequestContext(channel="job")):
        runs = run_due_plans()
    logger.info("supervision.sample.scheduled", extra={"runs": len(runs)})
    return len(runs)


@db_periodic_task(crontab(minute="0", hour="2", day="1"))
def monthly_report_job() -> int:
    """On the 1st, the supervision report of the previous calendar month, archived."""
    from vetline.core.errors import ValidationFailed
    from vetline.supervision.report import generate_scheduled_report

    with use_context(RequestContext(channel="job")):
        try:
            report = generate_scheduled_report()
        except ValidationFailed as exc:
            logger.error("supervision.report.scheduled_failed", extra={"reason": exc.message})
            return 0
    return 0 if report is None else report.pk


#: At most one follower run is queued per this many seconds, so a burst of batches (an import,
#: a capture run) is screened by a few runs rather than one run per batch.
KICK_WINDOW_SECONDS = 5

_kick = Kick(follow_records_task, window_seconds=KICK_WINDOW_SECONDS)


def on_records_archived(sender: object, **kwargs: object) -> None:
    """The kick: queue the follower (see :class:`~vetline.archive.signals.Kick`). Quick and
    never raises (the catch-up job covers a loss)."""
    try:
        _kick()
    except Exception:  # pragma: no cover - the queue being down must not break ingest
        logger.exception("supervision.flags.kick_failed")


@db_periodic_task(crontab(minute="*"))
def notifications_job() -> int:
    """Every minute: overdue notices and escalations, digests that are due, then send what is
    waiting (vetline.supervision.notifications). One run at a time; never raises."""
    from huey.exceptions import TaskLockedException

    from vetline.supervision.notifications import run_notifications

    try:
        with lock_task("supervision-notifications"), use_context(RequestContext(channel="job")):
            result = run_notifications()
    except TaskLockedException:
        return 0
    return result["sent"]
