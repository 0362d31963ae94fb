"""Test doubles shared by the connector framework's tests and the plugins' tests."""

from __future__ import annotations

from typing import ClassVar


class FakeClock:
    """The framework's Clock (:class:`vetline.connectors.http.Clock`) without waiting: every
    wait asked for is recorded in ``sleeps`` and moves the time on, so retry and rate-limit
    tests run instantly and can assert on the waits."""

    #: the time a new clock shows; a plugin's tests set the one its fixtures were recorded at
    start: ClassVar[float] = 1_800_000_000.0

    def __init__(self) -> None:
        self.t = self.start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
