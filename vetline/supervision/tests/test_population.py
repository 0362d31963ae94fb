"""Fetching a population's record ids from the database (SQLite and PostgreSQL), on records
archived through the real ingest path, and drawing from them end to end: the documented export
query + script re-derive the same sample."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db import connection

from vetline.archive.models import ArchivedRecord
from vetline.supervision.draw import draw_sample, population_sha256
from vetline.supervision.population import fetch_ids

DOC = Path(__file__).resolve().parents[3] / "docs" / "supervision-sampling.md"


@pytest.fixture
def archived(world: Any, settings: Any, tmp_path: Path) -> dict[str, list[int]]:
    """60 records on the corporate account (half inbound), 15 on the employee's account."""
    from vetline.archive.actions import ingest_batch
    from vetline.core.context import RequestContext, use_context

    settings.VETLINE_WITNESS_DIR = str(tmp_path / "witness")
    settings.VETLINE_BLOB_DIR = str(tmp_path / "blobs")

    def item(i: int, direction: str) -> dict[str, Any]:
        return {
            "remote_id": f"p{i}",
            "kind": "post",
            "direction": direction,
            "text": f"Message {i}",
            "author": "@acme",
            "network_timestamp": "2025-03-01T10:00:00Z",
        }

    with use_context(RequestContext(channel="test")):
        ingest_batch(
            items=[item(i, "inbound" if i % 2 else "outbound") for i in range(60)],
            account=world.corporate,
            source="test",
            actor=None,
            screen=False,
        )
        ingest_batch(
            items=[item(i, "outbound") for i in range(15)],
            account=world.employee_account,
            source="test",
            actor=None,
            screen=False,
        )
    return {
        "corporate": sorted(
            ArchivedRecord.objects.filter(account=world.corporate).values_list("pk", flat=True)
        ),
        "employee": sorted(
            ArchivedRecord.objects.filter(account=world.employee_account).values_list(
                "pk", flat=True
            )
        ),
    }


@pytest.mark.django_db
def test_fetch_ids_of_querysets(world: Any, archived: dict[str, list[int]]) -> None:
    everyone = fetch_ids(ArchivedRecord.objects.all())
    assert everyone.dtype == np.int64
    assert everyone.tolist() == sorted(archived["corporate"] + archived["employee"])
    inbound = ArchivedRecord.objects.filter(account=world.corporate, direction="inbound")
    assert fetch_ids(inbound).tolist() == sorted(inbound.values_list("pk", flat=True))
    assert len(fetch_ids(inbound)) == 30
    # the model's default ordering (newest first) does not matter: ids come back ascending
    assert fetch_ids(ArchivedRecord.objects.order_by("-id")).tolist() == everyone.tolist()
    # an empty population
    empty = fetch_ids(ArchivedRecord.objects.filter(remote_id="nothing"))
    assert empty.size == 0 and empty.dtype == np.int64


@pytest.mark.django_db
def test_fetch_ids_of_raw_sql_sorts_and_removes_duplicates(archived: dict[str, list[int]]) -> None:
    table = ArchivedRecord._meta.db_table
    ids = fetch_ids(
        (
            f"SELECT id FROM {table} WHERE direction = %s "
            f"UNION ALL SELECT id FROM {table} WHERE direction = %s",
            ["outbound", "outbound"],
        )
    )
    expected = sorted(
        ArchivedRecord.objects.filter(direction="outbound").values_list("pk", flat=True)
    )
    assert ids.tolist() == expected
    # a column of any name
    assert fetch_ids((f"SELECT id AS record FROM {table} ORDER BY id DESC", [])).size == 75


@pytest.mark.django_db
def test_fetch_then_draw_is_rederived_from_a_plain_export(
    world: Any, archived: dict[str, list[int]], tmp_path: Path
) -> None:
    """The documented route: export the ids with a plain SELECT, run the script."""
    qs = ArchivedRecord.objects.filter(account=world.corporate)
    ids = fetch_ids(qs)
    seed = "c0ffee" * 10 + "beef"
    sample = draw_sample(ids, sample_size=12, seed=seed)
    assert sample.population_sha256 == population_sha256(archived["corporate"])

    table = ArchivedRecord._meta.db_table
    with connection.cursor() as cur:  # what sqlite3/psql would print: one id a line
        cur.execute(f"SELECT id FROM {table} WHERE account_id = %s", [world.corporate.pk])
        export = "\n".join(str(row[0]) for row in cur.fetchall()) + "\n"
    (tmp_path / "ids.txt").write_text(export)
    found = re.search(r"<!-- rederive.py -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert found
    (tmp_path / "rederive.py").write_text(found.group(1))
    out = subprocess.run(
        [
            sys.executable,
            "-I",
            str(tmp_path / "rederive.py"),
            str(tmp_path / "ids.txt"),
            seed,
            "12",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert out[0] == sample.population_sha256
    assert [int(x) for x in out[1:]] == list(sample.ids)


@pytest.mark.django_db
def test_ids_through_joins_are_deduplicated(world: Any, archived: dict[str, list[int]]) -> None:
    """Through a join an id can come back twice: each id once."""
    from vetline.accounts.models import SocialAccount

    owners = SocialAccount.objects.filter(archived_records__direction="outbound")
    assert owners.count() > 2  # one row per outbound record: duplicates
    ids = fetch_ids(owners)
    assert ids.tolist() == sorted({world.corporate.pk, world.employee_account.pk})
    by_owner = ArchivedRecord.objects.filter(account__owner=world.employee_account.owner)
    assert fetch_ids(by_owner).tolist() == archived["employee"]
