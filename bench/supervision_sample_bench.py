"""Drawing a spot-check sample over 10 million archived records, end to end, against a baseline
measured in the same run.

End to end is what a sampling job does (vetline.supervision.population / .draw):

1. ``fetch_ids``: the population's record ids from the database (binary ``COPY`` on
   PostgreSQL, ``group_concat`` on SQLite, see population.py), as a sorted numpy int64 array;
2. ``draw_sample``: checks the ids are sorted and distinct, hashes them (SHA-256 over 8-byte
   big-endian integers, recorded with the sample) and draws with the seeded HMAC-SHA256 partial
   Fisher-Yates shuffle (procedure vetline-sample-v1, docs/supervision-sampling.md).

``process_cpu`` is the CPU time of this process (on SQLite the database work is in-process; on
PostgreSQL the server's share is not in it): on a shared machine it shows the work apart from
the waiting for a CPU, and the 1-minute load average is recorded before and after.

Measured for a statistical sample (95% confidence, 5% tolerable, 1% expected: 93 items) and a
1% fixed-rate sample (100,000 items at 10M). The population is every record captured in a
period, as a plan's query selects it (``ArchivedRecord.objects.filter(captured_at__gte=…,
captured_at__lt=…)``); the same period less one record in a thousand (9.99M ids that are not
one range, in case a shortcut for ranges ever creeps in); one account group (a quarter of the
accounts).

Baselines in the same run, on the same rows, in an order that turns with every repetition:

* ``baseline_values_list``: ``list(qs.values_list("pk", flat=True))``, the plain Django way to
  get the ids (no hash, no draw);
* ``baseline_cursor_fetchall``: the same ``SELECT id`` through a DB-API cursor, ``fetchall()``.

    python bench/supervision_sample_bench.py [--records 10000000] [--repeat 5]
        [--database-url URL] [--data-dir DIR] [--load-only]

Generates the records straight into a fresh database (no ingest path: prepared rows, one
``executemany`` per chunk on SQLite, ``COPY`` on PostgreSQL; short texts and no full-text index,
which sampling never reads). ``--data-dir`` (SQLite, default /tmp/vetline-sample-bench) and
``--database-url`` keep the database for the next run with the same record count. Writes
bench/results/supervision_sample[_postgresql][_SIZE].json (no size suffix at 10M).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).absolute().parents[1]
sys.path.insert(0, str(ROOT))

from bench.archive_search_bench import _pct, _pg_database  # noqa: E402

ACCOUNTS = 20
STEP_SECONDS = 60
BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
SEED = "5eed" * 16


def _setup(data_dir: str, database_url: str) -> None:
    os.environ["VETLINE_DATA_DIR"] = data_dir
    os.environ["VETLINE_ENV"] = "test"
    os.environ.pop("REDIS_URL", None)
    if database_url:
        _pg_database(database_url)
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "vetline.settings"
    import django

    django.setup()


def _accounts() -> list[Any]:
    from vetline.accounts.models import SocialAccount
    from vetline.identity.models import Person

    owner = Person.objects.filter(email="bench@example.com").first()
    if owner is None:
        owner = Person.objects.create_user(
            email="bench@example.com", password="x" * 16, full_name="B"
        )
    out = []
    for i in range(ACCOUNTS):
        acc, _ = SocialAccount.objects.get_or_create(
            network="x",
            handle=f"@bench{i}",
            defaults={"kind": "employee" if i < 2 else "corporate", "owner": owner},
        )
        out.append(acc)
    return out


def load(records: int, accounts: list[Any], chunk: int = 50_000) -> float:
    """Generate ``records`` rows straight into the archive table. Returns seconds."""
    from django.db import connection, transaction

    from vetline.archive.models import ArchivedRecord

    vendor = connection.vendor
    fields = [f for f in ArchivedRecord._meta.concrete_fields if not f.primary_key]
    columns: list[str] = [f.column for f in fields if f.column]
    adapt = connection.ops.adapt_datetimefield_value
    account_ids = [a.pk for a in accounts]
    zeros = "0" * 64

    def rows() -> Iterator[tuple[Any, ...]]:
        for i in range(records):
            at = BASE + dt.timedelta(seconds=i * STEP_SECONDS)
            value: dict[str, Any] = {
                "network": "x",
                "account_id": account_ids[i % ACCOUNTS],
                "remote_id": f"r{i:09d}",
                "version": 1,
                "previous_log_index": None,
                "record_class": "business_communication",
                "kind": "post" if i % 3 else "reply",
                "direction": "outbound" if i % 2 else "inbound",
                "author_handle": "@u",
                "participants": "[]",
                "conversation_id": "",
                "thread_id": "",
                "parent_remote_id": "",
                "text": "Bench record.",
                "attachments": "[]",
                "network_timestamp": at,
                "captured_at": at,
                "raw_payload": b"{}",
                "raw_payload_sha256": zeros,
                "content_sha256": zeros,
                "adopted": False,
                "approval_ref": None,
                "source": "bench",
                "log_index": i,
            }
            if vendor == "sqlite":
                value["network_timestamp"] = value["captured_at"] = adapt(at)
            yield tuple(value[c] if c in value else _default(fields, c) for c in columns)

    t0 = time.perf_counter()
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    if vendor == "sqlite":
        with connection.cursor() as cur:
            # a bench database: sampling never reads the full-text index, so it is not kept
            cur.execute("DROP TRIGGER IF EXISTS archive_record_fts_ai")
            cur.execute("PRAGMA journal_mode=MEMORY")
            cur.execute("PRAGMA synchronous=OFF")
        marks = ", ".join("%s" for _ in columns)
        sql = f"INSERT INTO archive_archivedrecord ({quoted}) VALUES ({marks})"
        it = rows()
        while batch := [r for _, r in zip(range(chunk), it, strict=False)]:
            with transaction.atomic(), connection.cursor() as cur:
                cur.executemany(sql, batch)
        with connection.cursor() as cur:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("ANALYZE")
    else:
        with connection.cursor() as cur:
            cur.execute("DROP INDEX IF EXISTS archive_record_search_tsv")
        with transaction.atomic(), connection.cursor() as cur:
            raw = cur.cursor
            with raw.copy(f"COPY archive_archivedrecord ({quoted}) FROM STDIN") as copy:
                for row in rows():
                    copy.write_row(row)
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE archive_archivedrecord")
    return time.perf_counter() - t0


def _default(fields: list[Any], column: str) -> Any:
    """A column added to the model after this bench was written: its default."""
    return next(f for f in fields if f.column == column).get_default()


def prepare(records: int) -> dict[str, Any]:
    from django.core.management import call_command

    from vetline.archive.models import ArchivedRecord

    call_command("migrate", verbosity=0)
    accounts = _accounts()
    have = ArchivedRecord.objects.count()
    out: dict[str, Any] = {"accounts": accounts, "load_seconds": None}
    if have == records:
        return out
    if have:
        raise SystemExit(f"the database holds {have} records, not {records}: use a new one")
    out["load_seconds"] = round(load(records, accounts), 1)
    return out


def _summary(seconds: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
        "p95_s": round(_pct(seconds, 95), 3),
        "n": len(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default="", help="postgres://…/NAME (kept, reused)")
    parser.add_argument("--data-dir", default="/tmp/vetline-sample-bench")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--output", default="", help="file name under bench/results/")
    args = parser.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)
    _setup(args.data_dir, args.database_url)
    loaded = prepare(args.records)
    if args.load_only:
        print(json.dumps({"load_seconds": loaded["load_seconds"]}))
        return

    from django.db import connection
    from django.db.models import F

    from vetline.archive.models import ArchivedRecord
    from vetline.supervision.draw import draw_sample
    from vetline.supervision.population import fetch_ids
    from vetline.supervision.sampling import statistical_sample_size

    vendor = connection.vendor
    accounts = loaded["accounts"]
    end = BASE + dt.timedelta(seconds=args.records * STEP_SECONDS)
    populations = {
        "period_all_accounts": ArchivedRecord.objects.filter(
            captured_at__gte=BASE, captured_at__lt=end
        ),
        # every record of the period but one in a thousand: ids that are not one range
        "period_all_accounts_with_gaps": ArchivedRecord.objects.filter(
            captured_at__gte=BASE, captured_at__lt=end
        )
        .annotate(gap=F("id") % 1000)
        .exclude(gap=0),
        "period_account_group": ArchivedRecord.objects.filter(
            captured_at__gte=BASE,
            captured_at__lt=end,
            account_id__in=[a.pk for a in accounts[: ACCOUNTS // 4]],
        ),
    }
    statistical_n = statistical_sample_size(
        confidence="0.95", tolerable_rate="0.05", expected_rate="0.01"
    ).n

    def end_to_end(qs: Any, n: int | None) -> dict[str, Any]:
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        ids = fetch_ids(qs)
        t1 = time.perf_counter()
        size = n if n is not None else -(-len(ids) // 100)  # 1% fixed rate, rounded up
        sample = draw_sample(ids, sample_size=size, seed=SEED)  # hashes the population, draws
        t2 = time.perf_counter()
        cpu = time.process_time() - cpu0
        return {
            "total": t2 - t0,
            "process_cpu": cpu,
            "fetch": t1 - t0,
            "hash_and_draw": t2 - t1,
            "population": len(ids),
            "sample": len(sample.ids),
            "first_ids": sample.ids[:3],
            "digest": sample.population_sha256,
        }

    def baseline_values_list(qs: Any) -> int:
        return len(list(qs.values_list("pk", flat=True)))

    def baseline_cursor(qs: Any) -> int:
        sql, params = qs.order_by().values_list("pk", flat=True).query.sql_with_params()
        with connection.cursor() as cur:
            cur.execute(sql, params)
            return len(cur.fetchall())

    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    qs: Any
    for name, qs in populations.items():
        timings: dict[str, list[float]] = {
            "statistical": [],
            "fixed_rate_1pct": [],
            "baseline_values_list": [],
            "baseline_cursor_fetchall": [],
        }
        parts: dict[str, list[float]] = {"fetch": [], "hash_and_draw": [], "process_cpu": []}
        facts: dict[str, Any] = {}
        end_to_end(qs, statistical_n)  # warm-up: the same pages for every variant
        for i in range(args.repeat):
            variants: list[tuple[str, Callable[[], Any]]] = [
                ("statistical", lambda qs=qs: end_to_end(qs, statistical_n)),
                ("fixed_rate_1pct", lambda qs=qs: end_to_end(qs, None)),
                ("baseline_values_list", lambda qs=qs: baseline_values_list(qs)),
                ("baseline_cursor_fetchall", lambda qs=qs: baseline_cursor(qs)),
            ]
            turn = i % len(variants)
            for label, fn in variants[turn:] + variants[:turn]:
                t0 = time.perf_counter()
                out = fn()
                elapsed = time.perf_counter() - t0
                timings[label].append(elapsed)
                if label == "statistical":
                    for part in parts:
                        parts[part].append(out[part])
                if isinstance(out, dict):
                    facts[label] = {
                        k: out[k] for k in ("population", "sample", "first_ids", "digest")
                    }
                else:
                    facts[label] = {"rows": out}
        row: dict[str, Any] = {label: _summary(t) for label, t in timings.items()}
        row["statistical_parts_median_s"] = {  # process_cpu: this process, not the server
            k: round(statistics.median(v), 3) for k, v in parts.items()
        }
        row["facts"] = facts
        row["ratio_median_statistical_over_values_list"] = round(
            statistics.median(timings["statistical"])
            / statistics.median(timings["baseline_values_list"]),
            2,
        )
        results[name] = row
        print(name, json.dumps(row), flush=True)

    size = f"{args.records / 1e6:g}M" if args.records >= 1e6 else f"{args.records // 1000}k"
    head = results["period_all_accounts"]
    gaps = results["period_all_accounts_with_gaps"]
    result = {
        "benchmark": "supervision sample draw: population fetch + SHA-256 + seeded draw",
        "database": vendor,
        "database_version": (
            connection.Database.sqlite_version  # type: ignore[attr-defined]
            if vendor == "sqlite"
            else str(connection.cursor().connection.info.server_version)
        ),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "records": args.records,
        "repeat": args.repeat,
        "statistical_sample_size": statistical_n,
        "note": (
            f"Measured at {size} records, warm cache. End to end = fetch_ids (queryset to "
            "sorted int64 array) + draw_sample (check, SHA-256, seeded draw), as a sampling job "
            "runs it. "
            "Baselines in the same run on the same rows: list(values_list('pk', flat=True)) "
            "and a cursor fetchall of the same SELECT."
        ),
        "load_seconds": loaded["load_seconds"],
        "load_average_1min_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "populations": results,
        "target_s": 2.0,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    print(
        "README: drawing a sample over "
        f"{head['facts']['statistical']['population']:,} records ({vendor}): "
        f"{head['statistical']['median_s']} s median end to end (93-item statistical sample), "
        f"{head['fixed_rate_1pct']['median_s']} s for a 1% sample, vs "
        f"{head['baseline_values_list']['median_s']} s for a plain values_list('pk') fetch; "
        f"{gaps['statistical']['median_s']} s over {gaps['facts']['statistical']['population']:,}"
        f" ids that are not one range (values_list: {gaps['baseline_values_list']['median_s']} s)"
        " (target <= 2 s)."
    )
    connection.close()
    sized = "" if args.records == 10_000_000 else f"_{size.lower()}"
    name = args.output or f"supervision_sample{'' if vendor == 'sqlite' else '_' + vendor}{sized}"
    name = name if name.endswith(".json") else name + ".json"
    (ROOT / "bench" / "results" / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
