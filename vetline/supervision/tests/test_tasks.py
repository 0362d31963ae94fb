"""The wiring: the archive's ``records_archived`` kick runs the follower (jobs run immediately
in tests), and the periodic catch-up finds records whose kick was lost."""

from __future__ import annotations

from typing import Any

import pytest

from vetline.supervision.models import ReviewItem
from vetline.supervision.tests.conftest import ingest

pytestmark = pytest.mark.django_db


def test_records_archived_kicks_the_follower(
    desk: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from huey.contrib.djhuey import HUEY

    from vetline.supervision.tasks import KICK_DELAY_SECONDS

    def scheduled() -> list[Any]:
        return [t for t in HUEY.scheduled() if t.name.endswith("follow_records_task")]

    for task in scheduled():
        HUEY.revoke_by_id(task.id)
    before = {t.id for t in scheduled()}
    with django_capture_on_commit_callbacks(execute=True):
        ids = ingest(
            desk.world.corporate,
            [{"remote_id": "k1", "kind": "post", "direction": "outbound", "text": "guarantee"}],
        )
    kicked = [t for t in scheduled() if t.id not in before]
    assert len(kicked) == 1  # one follower run, a few seconds later
    assert kicked[0].eta is not None
    assert not ReviewItem.objects.filter(record_id=ids[0]).exists()
    HUEY.execute(kicked[0], timestamp=kicked[0].eta)  # what the worker does when it is due
    assert ReviewItem.objects.filter(record_id=ids[0]).exists()
    assert KICK_DELAY_SECONDS <= 60


def test_catch_up_job_finds_records_without_a_kick(desk: Any) -> None:
    from vetline.supervision.tasks import follow_records_catch_up

    ids = ingest(  # on_commit callbacks do not run here: no kick
        desk.world.corporate,
        [{"remote_id": "k2", "kind": "post", "direction": "outbound", "text": "guarantee"}],
    )
    assert not ReviewItem.objects.filter(record_id=ids[0]).exists()
    follow_records_catch_up.call_local()
    assert ReviewItem.objects.filter(record_id=ids[0]).exists()
