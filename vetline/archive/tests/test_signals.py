"""The records_archived kick: at most one queued follower run per window, and never a committed
batch that no queued run will see."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from vetline.archive.signals import Kick


class _Queue:
    """Stands for a Huey task: records when runs were queued to start."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.starts: list[float] = []

    def __call__(self) -> None:
        self.starts.append(self.clock[0])

    def schedule(self, *, delay: float) -> None:
        assert delay > 0
        self.starts.append(self.clock[0] + delay)


def _kick(window: float, clock: list[float], queue: _Queue, immediate: bool = False) -> Kick:
    return Kick(queue, window_seconds=window, clock=lambda: clock[0], immediate=lambda: immediate)


def test_a_burst_queues_one_run_per_window() -> None:
    clock = [100.0]
    queue = _Queue(clock)
    kick = _kick(5, clock, queue)
    assert kick() is True  # quiet until now: at once
    for t in (100.5, 101, 103, 104.9):
        clock[0] = t
        assert kick() is (t == 100.5)  # the second queues the run at the end of the window
    assert queue.starts == [100.0, 105.0]
    clock[0] = 105.0  # the queued run may already have started: queue the next one
    assert kick() is True
    assert queue.starts[-1] == 110.0
    clock[0] = 200.0  # quiet again: at once
    assert kick() is True
    assert queue.starts[-1] == 200.0


def test_immediate_queue_runs_every_kick() -> None:
    clock = [0.0]
    queue = _Queue(clock)
    kick = _kick(5, clock, queue, immediate=True)
    assert all(kick() for _ in range(3))
    assert queue.starts == [0.0, 0.0, 0.0]


@given(
    window=st.floats(min_value=0.1, max_value=60),
    gaps=st.lists(st.floats(min_value=0, max_value=30), min_size=1, max_size=60),
)
def test_every_kick_is_followed_by_a_run_that_starts_no_earlier(
    window: float, gaps: list[float]
) -> None:
    clock = [0.0]
    queue = _Queue(clock)
    kick = _kick(window, clock, queue)
    kicks: list[float] = []
    for gap in gaps:
        clock[0] += gap
        kicks.append(clock[0])
        kick()
    # a run queued to start at or after the kick sees the batch that sent it (sent on commit)
    for t in kicks:
        assert any(start >= t for start in queue.starts)
    # and never more than one queued run per window after the first
    starts = sorted(queue.starts)
    assert all(b - a >= window - 1e-9 for a, b in itertools.pairwise(starts))
    assert len(starts) <= len(kicks)


def test_the_receivers_use_it() -> None:
    from vetline.profiles import tasks as profiles_tasks
    from vetline.publishing import tasks as publishing_tasks
    from vetline.supervision import tasks as supervision_tasks

    kicks: list[Any] = [
        profiles_tasks._kick,
        publishing_tasks.kick_follow_archive,
        supervision_tasks._kick,
    ]
    assert all(isinstance(k, Kick) for k in kicks)
