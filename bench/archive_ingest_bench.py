"""Archive ingest throughput: the full ingest path (validation, canonical bytes, hashing, log
append with subtree hashes, idempotency lookup, one audit event a batch; screening off) against a
raw ``bulk_create`` of the same record rows into the same database, in the same run.

    python bench/archive_ingest_bench.py [--items 50000] [--batch 1000] [--database-url URL]

Sets up its own database: a SQLite file in a temporary data directory, or (with
``--database-url postgres://…/NAME``) a fresh PostgreSQL database NAME_bench created on that
server and dropped afterwards. Writes bench/results/archive_ingest[_postgresql].json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _items(prefix: str, n: int) -> list[dict[str, Any]]:
    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return [
        {
            "remote_id": f"{prefix}{i:09d}",
            "kind": "post" if i % 3 else "reply",
            "direction": "outbound" if i % 2 else "inbound",
            "text": f"Message {i}: our rates are competitive; call us at the branch. #{i % 97}",
            "author": f"@user{i % 1000}",
            "participants": [f"@user{i % 1000}", "@bank"],
            "conversation_id": f"c{i // 10}",
            "network_timestamp": (base + dt.timedelta(seconds=i)).isoformat(),
        }
        for i in range(n)
    ]


def _pg_database(url: str) -> tuple[str, Any]:
    import psycopg

    head, _, name = url.rpartition("/")
    bench = f"{name or 'vetline'}_bench"
    admin = psycopg.connect(f"{head}/postgres", autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{bench}"')
    admin.execute(f'CREATE DATABASE "{bench}"')
    return f"{head}/{bench}", (admin, bench)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="vetline-archive-bench-")
    os.environ["VETLINE_DATA_DIR"] = tmp.name
    os.environ["VETLINE_ENV"] = "test"
    os.environ.pop("REDIS_URL", None)
    cleanup = None
    if args.database_url:
        os.environ["DATABASE_URL"], cleanup = _pg_database(args.database_url)
    else:
        os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "vetline.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from vetline.accounts.models import SocialAccount
    from vetline.archive.actions import ingest_batch
    from vetline.archive.items import clean_item
    from vetline.archive.models import ArchivedRecord
    from vetline.archive.verification import verify_database
    from vetline.identity.models import Person

    call_command("migrate", verbosity=0)
    owner = Person.objects.create_user(email="bench@example.com", password="x" * 16, full_name="B")
    ingest_account = SocialAccount.objects.create(
        network="x", handle="@bench", kind="corporate", owner=owner
    )
    raw_account = SocialAccount.objects.create(
        network="x", handle="@raw", kind="corporate", owner=owner
    )
    n, size = args.items, args.batch
    items = _items("m", n)

    # warm-up (connections, caches), not timed
    ingest_batch(
        items=_items("w", 200), account=ingest_account, source="bench", actor=None, screen=False
    )

    t0 = time.perf_counter()
    for start in range(0, n, size):
        ingest_batch(
            items=items[start : start + size],
            account=ingest_account,
            source="bench",
            actor=None,
            screen=False,
        )
    ingest_s = time.perf_counter() - t0

    # the same rows, fully prepared in advance, inserted raw
    now = timezone.now()
    rows = []
    for i, it in enumerate(items):
        c = clean_item(it)
        rows.append(
            ArchivedRecord(
                network="x",
                account=raw_account,
                remote_id=c.remote_id,
                version=1,
                record_class=c.record_class,
                kind=c.kind,
                direction=c.direction,
                author_handle=c.author,
                participants=c.participants,
                conversation_id=c.conversation_id,
                text=c.text,
                attachments=c.attachments,
                network_timestamp=c.network_timestamp,
                captured_at=now,
                raw_payload=c.raw_payload,
                raw_payload_sha256=c.raw_payload_sha256,
                content_sha256=c.raw_payload_sha256,
                adopted=c.adopted,
                source="raw",
                log_index=10_000_000_000 + i,
            )
        )
    t0 = time.perf_counter()
    for start in range(0, n, size):
        with transaction.atomic():
            ArchivedRecord.objects.bulk_create(rows[start : start + size], batch_size=size)
    raw_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    ok = verify_database().ok  # the raw rows are outside the log: reported as unlogged
    verify_s = time.perf_counter() - t0

    vendor = connection.vendor
    result = {
        "benchmark": "archive ingest (hashing + log append, screening off)",
        "database": vendor,
        "database_version": (
            connection.Database.sqlite_version
            if vendor == "sqlite"
            else str(connection.cursor().connection.info.server_version)
        ),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "items": n,
        "batch_size": size,
        "ingest_seconds": round(ingest_s, 3),
        "ingest_msgs_per_s": round(n / ingest_s),
        "raw_bulk_insert_seconds": round(raw_s, 3),
        "raw_bulk_insert_msgs_per_s": round(n / raw_s),
        "ratio_ingest_to_raw": round(raw_s / ingest_s, 3),
        "target_msgs_per_s": 20_000 if vendor == "sqlite" else 10_000,
        "target_ratio": 0.5,
        "full_verify_seconds": round(verify_s, 3),
        "full_verify_entries_per_s": round((n + 200 + n // size + 1) / verify_s),
        "verify_ok_without_raw_rows": ok is False,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    connection.close()
    if cleanup is not None:
        admin, bench = cleanup
        admin.execute(f'DROP DATABASE IF EXISTS "{bench}" WITH (FORCE)')
        admin.close()
    suffix = "" if vendor == "sqlite" else f"_{vendor}"
    out = ROOT / "bench" / "results" / f"archive_ingest{suffix}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
