"""Fixtures of the archive tests: witness and blob directories in tmp, an ingest helper."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _archive_dirs(settings: Any, tmp_path: Any) -> None:
    settings.VETLINE_WITNESS_DIR = str(tmp_path / "witness")
    settings.VETLINE_BLOB_DIR = str(tmp_path / "blobs")


def item(remote_id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "remote_id": remote_id,
        "kind": "post",
        "direction": "outbound",
        "text": f"Hello from {remote_id}",
        "author": "@acme",
        "network_timestamp": "2025-03-01T10:00:00Z",
    }
    base.update(fields)
    return base


@pytest.fixture
def ingest(world: Any) -> Callable[..., Any]:
    from vetline.archive.actions import ingest_batch
    from vetline.core.context import RequestContext, use_context

    def _ingest(items: list[Any], *, account: Any = None, source: str = "test", **kw: Any) -> Any:
        with use_context(RequestContext(channel="test")):
            return ingest_batch(
                items=items, account=account or world.corporate, source=source, actor=None, **kw
            )

    return _ingest
