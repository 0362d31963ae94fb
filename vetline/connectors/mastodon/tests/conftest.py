from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
HOST = "https://mastodon.example"
TOKEN = "ZA-Yj3aBD8U8Cm7lKUp-lm9O9BmDgdhHzDeqsY8tlL0"
ACCOUNT_ID = "109871234567890001"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


class FakeClock:
    """The framework's Clock, without waiting: records what would have been slept."""

    def __init__(self, start: float = 1_740_826_800.0) -> None:
        self.current = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.current += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def connector(clock: FakeClock) -> Any:
    import random

    from vetline.connectors.mastodon.connector import MastodonConnector

    return MastodonConnector(config={}, clock=clock, rng=random.Random(7))


@pytest.fixture
def tokens() -> Any:
    from vetline.connectors.base import TokenSet

    return TokenSet(
        access_token=TOKEN,
        scopes=("read", "write"),
        remote_account_id=f"{ACCOUNT_ID}@mastodon.example",
        remote_handle="@acme@mastodon.example",
    )
