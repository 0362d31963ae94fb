"""Test helpers shared by the Facebook, Instagram and LinkedIn connector tests."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vetline.connectors.base import ActivityPage


class FakeClock:
    """The framework's Clock, without sleeping: waits are recorded and advance the time."""

    def __init__(self, now: float = 1_749_000_000.0) -> None:  # 2025-06-04T01:20:00Z
        self.t = now
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def fixture_bytes(folder: Path, name: str) -> bytes:
    return (folder / "fixtures" / name).read_bytes()


def fixture_json(folder: Path, name: str) -> Any:
    return json.loads(fixture_bytes(folder, name))


def raw_of(item: Mapping[str, Any] | bytes) -> bytes:
    if isinstance(item, bytes):
        return item
    return base64.b64decode(item["raw_payload_b64"])


def drain(
    fetch: Callable[[str | None], ActivityPage], cursor: str | None = None
) -> tuple[list[Mapping[str, Any] | bytes], str | None, int]:
    """Fetch until the sweep is over, as the framework's capture loop does."""
    items: list[Mapping[str, Any] | bytes] = []
    calls = 0
    while True:
        page = fetch(cursor)
        calls += 1
        items.extend(page.items)
        cursor = page.cursor
        if not page.more:
            return items, cursor, calls
        assert calls < 200, "the sweep does not end"


def by_id(items: list[Mapping[str, Any] | bytes]) -> dict[str, Mapping[str, Any]]:
    return {i["remote_id"]: i for i in items if not isinstance(i, bytes)}
