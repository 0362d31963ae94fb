from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vetline.connectors.tests.fakes import FakeClock as BaseFakeClock

FIXTURES = Path(__file__).parent / "fixtures"
HOST = "https://mastodon.example"
TOKEN = "ZA-Yj3aBD8U8Cm7lKUp-lm9O9BmDgdhHzDeqsY8tlL0"
ACCOUNT_ID = "109871234567890001"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


class FakeClock(BaseFakeClock):
    """The framework's fake clock, at the time the fixtures were recorded."""

    start = 1_740_826_800.0


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
