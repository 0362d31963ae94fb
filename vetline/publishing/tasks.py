"""Background jobs of publishing: sending one publication (taking its id), and a periodic tick
that sends what is due, retries after backoff, reconciles interrupted sends, expires stale
approvals and follows the archive for rogue posts."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from vetline.archive.signals import Kick
from vetline.core.context import RequestContext, use_context

logger = logging.getLogger(__name__)


@db_task()
def publish_task(publication_id: int) -> str:
    """Send one publication. Safe to run twice, concurrently or after a crash: the publication
    row's state decides, under its lock, whether this run sends."""
    from vetline.publishing.actions import publish_publication

    with use_context(RequestContext(channel="job")):
        outcome = publish_publication(publication_id=publication_id)
    logger.info(
        "publishing.publish.done", extra={"publication": publication_id, "outcome": outcome}
    )
    return outcome


@db_task()
def follow_archive_task() -> int:
    from vetline.publishing.actions import follow_archive

    total = 0
    with use_context(RequestContext(channel="job")):
        while True:
            n = follow_archive()
            total += n
            if n == 0:
                break
    return total


#: The rogue-post follower is queued at most once a second by the archive's kicks: the first
#: batch of a burst at once, the rest by one run at the end of the second.
kick_follow_archive = Kick(follow_archive_task, window_seconds=1)


@db_periodic_task(crontab(minute="*"))
@lock_task("publishing-tick")
def publishing_tick() -> dict[str, int]:
    """Every minute: expire approvals, send what is due, reconcile interrupted sends, and catch
    up with the archive (the records_archived signal is only a kick)."""
    from vetline.publishing import actions, approvals

    with use_context(RequestContext(channel="job")):
        expired = approvals.expire_approvals()
        due = actions.due_publication_ids()
        for pk in due:
            actions.publish_publication(publication_id=pk)
        stale = actions.stale_sending_ids()
        for pk in stale:
            actions.reconcile_publication(publication_id=pk)
        followed = 0
        while (n := actions.follow_archive()) > 0:
            followed += n
    return {"expired": expired, "sent": len(due), "reconciled": len(stale), "followed": followed}
