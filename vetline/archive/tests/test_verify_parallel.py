"""Verification with worker processes finds exactly what one process finds (the worker
processes read the committed rows through their own connections, so the test commits)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from vetline.archive import log
from vetline.archive.actions import sign_tree_head
from vetline.archive.models import ArchivedRecord
from vetline.archive.tests.conftest import item
from vetline.archive.tests.test_integrity_db import _sql, triggers_dropped
from vetline.archive.verification import verify_database

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch: Any) -> None:
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite" and ("memory" in name or not name):
        pytest.skip("worker processes cannot open an in-memory SQLite database")
    monkeypatch.setattr(log, "PARALLEL_MIN_ENTRIES", 1)
    monkeypatch.setattr(log, "ENTRY_CHUNK", 7)  # many ranges, runs cut at range ends


def _summary(result: Any) -> tuple[Any, ...]:
    r = result.report
    return (
        result.ok,
        r.entries_checked,
        r.log_size,
        r.root,
        r.heads_verified,
        sorted((f["kind"], f["index"], f.get("object"), f["detail"]) for f in result.findings),
    )


def test_worker_processes_find_what_one_process_finds(ingest: Any) -> None:
    for batch in range(3):
        ingest([item(f"p{batch}-{i}", text=f"message {batch} {i}") for i in range(15)])
        sign_tree_head()
    ingest([item("p1-3", kind="edit", text="edited")])
    one, two = verify_database(workers=1), verify_database(workers=2)
    assert one.ok, one.lines()
    assert _summary(two) == _summary(one)

    target = ArchivedRecord.objects.get(remote_id="p2-4")
    with triggers_dropped("archive_archivedrecord"):
        _sql("UPDATE archive_archivedrecord SET text = 'forged' WHERE id = %s", [target.pk])
    one, two = verify_database(workers=1), verify_database(workers=2)
    assert set(one.counts) == {"record_modified"}
    assert one.findings[0]["index"] == target.log_index
    assert "content was altered" in one.findings[0]["detail"]
    assert _summary(two) == _summary(one)
