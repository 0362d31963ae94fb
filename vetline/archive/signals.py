"""What the archive tells the rest of Vetline.

``records_archived`` is sent once a batch that archived new records has committed, with
``account_id`` and ``record_ids`` (the new records, in log order). Receivers use it as a *kick*
only: anything that must see every record (supervision flags, the rogue-post alarm) keeps its own
cursor over record ids and catches up from it, so a crash between the commit and the signal
loses nothing. Receivers must be quick (queue a job) and must not raise.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from django.dispatch import Signal

records_archived = Signal()


def _queue_is_immediate() -> bool:
    from huey.contrib.djhuey import HUEY

    return bool(HUEY.immediate)


class Kick:
    """Queue a follower's job on ``records_archived`` at most once per ``window_seconds`` (per
    process), without ever leaving a committed batch unseen.

    A kick at time *t* is skipped only when this process has already scheduled the job to start
    at a later moment than *t*: that run starts after the batch that sent the kick committed (the
    signal is sent on commit), so it sees the batch's records through its cursor. Otherwise the
    job is queued to start at once, or at the end of the window when the last one was queued
    less than a window ago. A burst of batches (an import, a backfill) thus queues one job per
    window instead of one per batch: on the embedded queue each enqueue is a commit of its own.
    With the queue in immediate mode (the tests) every kick runs the job.
    """

    def __init__(
        self,
        task: Any,
        *,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        immediate: Callable[[], bool] | None = None,
    ) -> None:
        self._task = task  # a Huey task: called to queue now, .schedule(delay=…) for later
        self._window = window_seconds
        self._lock = threading.Lock()
        self._last_start = -math.inf  # monotonic time the last queued run may start
        self._clock = clock
        self._immediate = immediate or _queue_is_immediate

    def __call__(self) -> bool:
        """Queue the job unless a queued one starts later than now. True when queued."""
        if self._immediate():
            self._task()
            return True
        with self._lock:
            now = self._clock()
            if self._last_start > now:
                return False
            start = max(now, self._last_start + self._window)
            if start > now:
                self._task.schedule(delay=start - now)
            else:
                self._task()
            self._last_start = start
            return True
