"""Background jobs of profile vetting: drift detection, kicked when the archive stores new
records and run periodically as a catch-up (the cursor makes both safe to run at any time)."""

from __future__ import annotations

import logging
from typing import Any

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from vetline.archive.signals import Kick
from vetline.core.context import RequestContext, use_context

logger = logging.getLogger(__name__)


def _run() -> dict[str, int]:
    from vetline.profiles.actions import detect_drift

    with use_context(RequestContext(channel="job")):
        counts = detect_drift()
    logger.info("profiles.drift.checked", extra={"outcomes": counts})
    return counts


@db_task()
def detect_drift_task() -> dict[str, int]:
    # No task lock: a kick must never be dropped because a run is in progress. Concurrent runs
    # are serialised by the cursor's row lock (and, on SQLite, by its single writer).
    return _run()


#: At most one drift run is queued per this many seconds by the archive's kicks (a burst of
#: batches would otherwise queue one run each).
KICK_WINDOW_SECONDS = 2
_kick = Kick(detect_drift_task, window_seconds=KICK_WINDOW_SECONDS)


@db_periodic_task(crontab(minute="*/10"))
@lock_task("profiles-drift")
def detect_drift_job() -> dict[str, int]:
    """Catch up with any snapshot whose kick was lost (a crash between commit and signal)."""
    return _run()


def on_records_archived(sender: Any, record_ids: list[int] | None = None, **kwargs: Any) -> None:
    """Receiver of ``records_archived``: a kick only, quick and never raising."""
    try:
        _kick()
    except Exception:
        logger.exception("profiles.drift.kick_failed")
