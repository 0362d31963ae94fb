"""Test helpers shared by the Facebook, Instagram and LinkedIn connector tests."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vetline.connectors.base import ActivityPage, Malformed
from vetline.connectors.tests.fakes import FakeClock as BaseFakeClock


class FakeClock(BaseFakeClock):
    """The framework's fake clock, at 2025-06-04T01:20:00Z (the fixtures' time)."""

    start = 1_749_000_000.0


def fixture_bytes(folder: Path, name: str) -> bytes:
    return (folder / "fixtures" / name).read_bytes()


def fixture_json(folder: Path, name: str) -> Any:
    return json.loads(fixture_bytes(folder, name))


def raw_of(item: Mapping[str, Any] | bytes) -> bytes:
    if isinstance(item, bytes):
        return item
    return base64.b64decode(item["raw_payload_b64"])


Item = Mapping[str, Any] | bytes | Malformed


def unreadable(items: list[Item]) -> list[bytes]:
    """The payloads handed over as they were received (bytes, or malformed with a reason)."""
    return [i.payload if isinstance(i, Malformed) else i for i in items if not isinstance(i, dict)]


def reasons(items: list[Item]) -> list[str]:
    return [i.reason for i in items if isinstance(i, Malformed)]


def drain(
    fetch: Callable[[str | None], ActivityPage], cursor: str | None = None
) -> tuple[list[Item], str | None, int]:
    """Fetch until the sweep is over, as the framework's capture loop does."""
    items: list[Item] = []
    calls = 0
    while True:
        page = fetch(cursor)
        calls += 1
        items.extend(page.items)
        cursor = page.cursor
        if not page.more:
            return items, cursor, calls
        assert calls < 200, "the sweep does not end"


def by_id(items: list[Item]) -> dict[str, Mapping[str, Any]]:
    return {i["remote_id"]: i for i in items if isinstance(i, Mapping)}
