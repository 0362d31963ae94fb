"""The daily disposal job (registered by the last line of ``archive/tasks.py``)."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

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
