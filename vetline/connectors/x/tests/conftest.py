from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from vetline.connectors.tests.fakes import FakeClock as BaseFakeClock

FIXTURES = Path(__file__).parent / "fixtures"
API = "https://api.twitter.com/2"
USER_ID = "1466796521412771840"
TOKEN = "bWJ1ZVh5ZDFZd0VYc2pDbGFzLWZnWm9xTmpNNjQ4VXhmWUh5OjE3NDA4MjY4MDA6MToxOmF0OjE"
REFRESH = "bWRWa3gzdnk3WHRGU1o0bmRRcTJ5VUxWX1lZTDdJSUtmaWcxbTVxdEFXcW5tOjE3NDA4MjY4MDA6MToxOnJ0OjE"
CONFIG = {
    "client_id": "M1M5R3BMVy13QmpScXkzTUt5OE46MTpjaQ",
    "client_secret": "wXzXvVoV7U1Nj2dMsJb4M6D3y0uFz0h1tX8qPpGx3rO1Lq",
}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class FakeClock(BaseFakeClock):
    """The framework's fake clock, at the time the fixtures were recorded."""

    start = 1_740_826_800.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def connector(clock: FakeClock) -> Any:
    import random

    from vetline.connectors.x.connector import XConnector

    return XConnector(config=CONFIG, clock=clock, rng=random.Random(3))


@pytest.fixture
def tokens() -> Any:
    from vetline.connectors.base import TokenSet

    return TokenSet(
        access_token=TOKEN, refresh_token=REFRESH, remote_account_id=USER_ID, remote_handle="@acme"
    )


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
