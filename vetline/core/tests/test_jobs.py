"""Background jobs: one task API (Huey), SQLite-backed by default and Redis in production;
scheduled jobs survive a restart of the worker, periodic jobs are declared."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from pathlib import Path

import pytest
from huey import RedisHuey, SqliteHuey
from huey.api import Huey

from vetline.audit.models import AuditEvent
from vetline.core import tasks
from vetline.core.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db

BACKENDS = ["sqlite"] + (["redis"] if os.environ.get("REDIS_URL") else [])


def make_huey(kind: str, where: Path, name: str) -> Huey:
    if kind == "sqlite":
        return SqliteHuey(name=name, filename=str(where / "jobs.sqlite3"), utc=True)
    return RedisHuey(name=name, url=os.environ["REDIS_URL"], utc=True)


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_scheduled_job_survives_a_restart_and_runs_when_due(kind: str, tmp_path: Path) -> None:
    name = f"vetline-test-{uuid.uuid4().hex[:8]}"
    first = make_huey(kind, tmp_path, name)
    note = first.task(name="note")(tasks.record_system_note.func)
    eta = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=1)
    note.schedule(args=("quarterly report",), eta=eta)
    # The scheduler picks the job up from the queue into the schedule.
    message = first.dequeue()
    assert message is not None and first.add_schedule(message) is None
    del first, note  # the worker process goes away

    restarted = make_huey(kind, tmp_path, name)
    restarted.task(name="note")(tasks.record_system_note.func)
    assert restarted.scheduled_count() == 1
    assert (
        restarted.read_schedule(
            dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=5)
        )
        == []
    )  # not due yet
    time.sleep(1.1)
    due = restarted.read_schedule(dt.datetime.now(dt.UTC).replace(tzinfo=None))
    assert len(due) == 1
    restarted.execute(due[0])
    event = AuditEvent.objects.get(action="core.job.note")
    assert event.after == {"note": "quarterly report"} and event.actor_name == "worker"
    assert restarted.scheduled_count() == 0
    restarted.flush()


def test_configured_backend_follows_the_environment() -> None:
    from huey.contrib.djhuey import HUEY

    expected = RedisHuey if os.environ.get("REDIS_URL") else SqliteHuey
    assert isinstance(HUEY, expected)


def test_heartbeat_is_a_periodic_task_and_records_the_worker() -> None:
    from huey.contrib.djhuey import HUEY

    periodic = {t.name for t in HUEY._registry.periodic_tasks}
    assert any(n.endswith("worker_heartbeat") for n in periodic)
    assert tasks.worker_heartbeat.task_class().validate_datetime(dt.datetime(2026, 1, 1, 12, 7))
    name = tasks.worker_heartbeat.call_local()
    first = WorkerHeartbeat.objects.get(worker=name).last_seen_at
    tasks.worker_heartbeat.call_local()
    assert WorkerHeartbeat.objects.get(worker=name).last_seen_at >= first
    assert WorkerHeartbeat.objects.count() == 1
