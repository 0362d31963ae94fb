"""Rogue-post follower throughput: how long :func:`vetline.publishing.actions.follow_archive`
takes to catch up over an archive, compared in the same run, from the same cursor, on the same
records, against ``baseline_scan_every_record``: the first design, which loaded every record of
the window (payload included) and filtered in Python.

    python bench/rogue_follow_bench.py [--records 100000] [--database-url URL] [--data-dir DIR]

The archive mix: 40 accounts (20 corporate, 20 personal-for-business), every corporate account
connected. Per 1,000 records: 600 inbound comments and replies, 200 outbound posts on employee
accounts, 199 outbound corporate posts from before the connection (history, not alarms) and one
rogue post (a corporate post after the connection, not published through Vetline). Records go
in through ``ingest_batch`` (screening off). Both runs must find the same rogue posts; each
starts from an empty cursor with the rogue posts and alerts of the previous run removed. Writes
bench/results/rogue_follow[_postgresql].json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).absolute().parents[1]
ACCOUNTS = 20
RAW = "x" * 1500  # a network payload of typical size


def _setup(data_dir: str, database_url: str) -> None:
    os.environ["VETLINE_DATA_DIR"] = data_dir
    os.environ["VETLINE_ENV"] = "test"
    os.environ["VETLINE_JOBS_IMMEDIATE"] = "0"  # nothing kicked during the load
    os.environ.pop("REDIS_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "vetline.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def load(records: int) -> dict[str, Any]:
    from django.core.management import call_command
    from django.utils import timezone

    from vetline.accounts.models import AccountKind, Network, SocialAccount
    from vetline.archive.actions import ingest_batch
    from vetline.archive.models import ArchivedRecord
    from vetline.connectors.models import Connection
    from vetline.identity.models import Person

    call_command("migrate", verbosity=0)
    if ArchivedRecord.objects.exists():
        raise SystemExit("the database already holds records: use a new one")
    owner = Person.objects.create_user(email="owner@example.com", password="x" * 16)
    connected_at = timezone.now() - dt.timedelta(days=30)
    corporate, employee = [], []
    for i in range(ACCOUNTS):
        c = SocialAccount.objects.create(
            network=Network.X, handle=f"@brand{i}", kind=AccountKind.CORPORATE, owner=owner
        )
        Connection.objects.create(account=c, status="connected", connected_at=connected_at)
        corporate.append(c)
        employee.append(
            SocialAccount.objects.create(
                network=Network.LINKEDIN, handle=f"adv{i}", kind=AccountKind.EMPLOYEE, owner=owner
            )
        )
    before = (connected_at - dt.timedelta(days=1)).isoformat()
    after = (connected_at + dt.timedelta(days=1)).isoformat()
    t0 = time.perf_counter()
    n = 0
    batch = 500
    while n < records:
        for i in range(ACCOUNTS):
            corp_items, emp_items = [], []
            for _ in range(batch // ACCOUNTS):
                if n >= records:
                    break
                slot = n % 1000
                if slot < 600:
                    corp_items.append(
                        {
                            "remote_id": f"in{n}",
                            "kind": "comment",
                            "direction": "inbound",
                            "text": f"Customer question {n}",
                            "raw": {"p": RAW},
                        }
                    )
                elif slot < 800:
                    emp_items.append(
                        {
                            "remote_id": f"e{n}",
                            "kind": "post",
                            "direction": "outbound",
                            "text": f"Advisor post {n}",
                            "raw": {"p": RAW},
                        }
                    )
                else:
                    rogue = slot == 999
                    corp_items.append(
                        {
                            "remote_id": f"c{n}",
                            "kind": "post",
                            "direction": "outbound",
                            "text": f"Brand post {n}",
                            "network_timestamp": after if rogue else before,
                            "raw": {"p": RAW},
                        }
                    )
                n += 1
            for account, items in ((corporate[i], corp_items), (employee[i], emp_items)):
                if items:
                    ingest_batch(
                        items=items, account=account, source="bench", actor=None, screen=False
                    )
            if n >= records:
                break
    return {"ingest_seconds": round(time.perf_counter() - t0, 1)}


def _reset() -> None:
    from django.db import transaction

    from vetline.connectors.models import Alert
    from vetline.publishing.models import RogueCursor, RoguePost

    with transaction.atomic():
        RoguePost.objects.all().delete()
        Alert.objects.filter(code__startswith="rogue_post").delete()
        RogueCursor.objects.all().delete()


def follow() -> dict[str, int]:
    from vetline.publishing.actions import follow_archive
    from vetline.publishing.models import RoguePost

    looked = 0
    while (n := follow_archive()) > 0:
        looked += n
    return {"records": looked, "rogue_posts": RoguePost.objects.count()}


def scan_every_record() -> dict[str, int]:
    """The baseline: every record of each window loaded whole, the filtering done in Python
    (then the same per-record logic)."""
    from django.db import transaction
    from django.utils import timezone

    from vetline.archive.models import ArchivedRecord
    from vetline.publishing.actions import ROGUE_BATCH, _look_at
    from vetline.publishing.models import RogueCursor, RoguePost

    looked = 0
    while True:
        with transaction.atomic():
            cursor, _ = RogueCursor.objects.select_for_update().get_or_create(pk=1)
            rows = list(
                ArchivedRecord.objects.filter(pk__gt=cursor.last_record_id)
                .select_related("account")
                .order_by("pk")[:ROGUE_BATCH]
            )
            if not rows:
                return {"records": looked, "rogue_posts": RoguePost.objects.count()}
            connected: dict[int, Any] = {}
            for rec in rows:
                _look_at(rec, connected)
            cursor.last_record_id = rows[-1].pk
            cursor.updated_at = timezone.now()
            cursor.save()
            looked += len(rows)


def timed(fn: Any, runs: int) -> dict[str, Any]:
    times, outcome = [], {}
    for _ in range(runs):
        _reset()
        t0 = time.perf_counter()
        outcome = fn()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {
        "runs": runs,
        "median_s": round(median, 3),
        "records_per_s": round(outcome["records"] / median) if median else None,
        "outcomes": outcome,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--output", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _setup(args.data_dir or tmp, args.database_url)
        from django.db import connection

        loaded = load(args.records)
        optimised = timed(follow, args.runs)
        baseline = timed(scan_every_record, args.runs)
        assert optimised["outcomes"] == baseline["outcomes"], (optimised, baseline)
        result = {
            "benchmark": "rogue_follow",
            "database": connection.vendor,
            "records": args.records,
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            "load": loaded,
            "follow_archive": optimised,
            "baseline_scan_every_record": baseline,
            "speedup": round(baseline["median_s"] / optimised["median_s"], 2)
            if optimised["median_s"]
            else None,
        }
    suffix = "_postgresql" if connection.vendor == "postgresql" else ""
    out = ROOT / "bench" / "results" / f"{args.output or 'rogue_follow' + suffix}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
