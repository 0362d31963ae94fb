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
    from vetline.supervision.tasks import KICK_WINDOW_SECONDS

    with django_capture_on_commit_callbacks(execute=True):
        ids = ingest(
            desk.world.corporate,
            [{"remote_id": "k1", "kind": "post", "direction": "outbound", "text": "guarantee"}],
        )
    # the kick ran the follower (jobs run at once in tests; see Kick for the queued case)
    assert ReviewItem.objects.filter(record_id=ids[0]).exists()
    assert KICK_WINDOW_SECONDS <= 60


def test_catch_up_job_finds_records_without_a_kick(desk: Any) -> None:
    from vetline.supervision.tasks import follow_records_catch_up

    ids = ingest(  # on_commit callbacks do not run here: no kick
        desk.world.corporate,
        [{"remote_id": "k2", "kind": "post", "direction": "outbound", "text": "guarantee"}],
    )
    assert not ReviewItem.objects.filter(record_id=ids[0]).exists()
    follow_records_catch_up.call_local()
    assert ReviewItem.objects.filter(record_id=ids[0]).exists()
