"""Background jobs of the core. The task API is Huey's (SqliteHuey embedded, RedisHuey in
production); periodic tasks are declared with crontabs and scheduled tasks persist in the
queue's storage, so both survive restarts of the worker."""

from __future__ import annotations

import logging
import os
import socket

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from vetline.core.context import RequestContext, use_context
from vetline.core.models import WorkerHeartbeat

logger = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@db_periodic_task(crontab(minute="*"))
def worker_heartbeat() -> str:
    name = worker_name()
    now = timezone.now()
    obj, created = WorkerHeartbeat.objects.get_or_create(
        worker=name, defaults={"last_seen_at": now, "started_at": now}
    )
    if not created:
        WorkerHeartbeat.objects.filter(pk=obj.pk).update(last_seen_at=now)
    logger.debug("worker.heartbeat", extra={"worker": name})
    return name


@db_task()
def record_system_note(note: str) -> int:
    """A minimal scheduled job used by operators (and tests) to prove scheduling works:
    it appends a ``core.job.note`` audit event when it runs."""
    from django.db import transaction

    from vetline.audit.actions import record

    with use_context(RequestContext(channel="job")), transaction.atomic():
        event = record(
            action="core.job.note", actor=None, actor_name="worker", after={"note": note[:500]}
        )
    return event.pk
