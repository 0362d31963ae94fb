"""Background jobs of the archive: sign a tree head every 5 minutes (appending pending audit
events first), and verify the whole log every day, recording each result."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from vetline.core.context import RequestContext, use_context

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="*/5"))
def sign_tree_head_job() -> int:
    from vetline.archive.actions import sign_tree_head

    with use_context(RequestContext(channel="job")):
        head = sign_tree_head()
    logger.info("archive.tree_head.signed", extra={"tree_size": head.tree_size})
    return head.tree_size


@db_periodic_task(crontab(hour="3", minute="17"))
def verify_archive_job() -> bool:
    from vetline.archive.actions import append_pending_audit_events, run_verification

    with use_context(RequestContext(channel="job")):
        append_pending_audit_events()
        run, _ = run_verification(trigger="job")
    logger.info("archive.verify.done", extra={"ok": run.ok, "run": run.pk})
    return run.ok


from vetline.archive.export.tasks import run_export_task  # noqa: E402,F401
from vetline.archive.retention_tasks import dispose_expired_job  # noqa: E402,F401
