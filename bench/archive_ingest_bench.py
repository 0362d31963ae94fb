"""Archive ingest throughput and full verification time.

Ingest: the full ingest path (validation, canonical bytes, content and leaf hashing, idempotency
lookup, log append with subtree hashes, the synchronous full-text index, one audit event a batch,
commit before returning; screening off), against a raw bulk insert of the same record rows into
the same table of the same database, in the same run. The two are interleaved batch by batch, so
both see the same table sizes and the same machine load:

* ``raw_bulk_insert``: the prepared rows (values computed in advance, untimed) with the
  database's fastest plain method: ``COPY … FROM STDIN`` on PostgreSQL, multi-row
  ``INSERT … VALUES`` statements on SQLite; one transaction a batch, no Vetline code. The
  headline ratio is against this.
* ``raw_bulk_insert_with_leaves``: the same, plus the rows' log-leaf rows (what ingest writes
  to the two tables), for reference.
* ``raw_executemany``: the same record rows with a plain ``executemany`` of a one-row INSERT,
  for reference (on SQLite every statement also flushes the full-text index, see
  :class:`vetline.archive.log.BulkInsert`).

Each batch's ``records_archived`` kick queues its receivers' jobs (as in production: jobs are
not run inline here, as they are in the test suite). Besides wall times, the CPU time of this
process is reported: on a shared machine the wall time includes waiting for a CPU (the machine's
load average is recorded). On SQLite that CPU time includes the database engine's work.

Verification: a log of ``--verify-records`` records (built by ingest in its own fresh database,
in batches of 10,000, with a signed tree head) is verified in full by ``verify_database`` (what
``vetline archive verify`` runs, with its default worker processes); the time is extrapolated
linearly to 10 million records, and says so; the CPU time of the main and worker processes is
reported too.

    python -m bench.archive_ingest_bench [--items 50000] [--batch 1000]
        [--verify-records 1000000] [--database-url postgres://…/NAME]
        [--keep-verify-database] [--rounds 3]

``--keep-verify-database`` keeps the verification log (on PostgreSQL the database
NAME_bench_verify; on both, a fixed data directory under the temporary directory holding the
log's signing key, and the SQLite database) and, when it already holds ``--verify-records``
records, verifies it again without rebuilding: building 10 million records takes a quarter of
an hour, so the log can be built once and verified on a quiet machine.

Sets up its own databases: SQLite files in a temporary data directory, or (with
``--database-url postgres://…/NAME``) fresh PostgreSQL databases NAME_bench and
NAME_bench_verify on that server, dropped afterwards. Writes
bench/results/archive_ingest[_postgresql].json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
TARGET_VERIFY_RECORDS = 10_000_000
TARGET_VERIFY_SECONDS = 120
RAW_LOG_INDEX = 10**12  # raw rows' log indices: far beyond the log, never colliding
METHODS = {
    "sqlite": "multi-row INSERT VALUES (32,766 values a statement)",
    "raw_copy_binary": "COPY FROM STDIN (FORMAT BINARY)",
    "raw_bulk_insert_with_leaves": "the plain bulk insert, plus a log-leaf row for each record",
    "raw_executemany": "executemany of a one-row INSERT",
}


def _items(prefix: str, n: int, start: int = 0) -> list[dict[str, Any]]:
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
        for i in range(start, start + n)
    ]


def _pg_database(url: str, suffix: str, *, keep: bool = False) -> tuple[str, Any]:
    """A fresh database NAME{suffix} (kept as it is when ``keep`` and it exists); returns its
    URL and what teardown needs to drop it (None when kept)."""
    import psycopg

    head, _, name = url.rpartition("/")
    bench = f"{name or 'vetline'}{suffix}"
    admin = psycopg.connect(f"{head}/postgres", autocommit=True)
    exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [bench]).fetchone()
    if keep:
        if not exists:
            admin.execute(f'CREATE DATABASE "{bench}"')
        admin.close()
        return f"{head}/{bench}", None
    admin.execute(f'DROP DATABASE IF EXISTS "{bench}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{bench}"')
    return f"{head}/{bench}", (admin, bench)


def _setup(database_url: str, suffix: str, *, keep: bool = False) -> tuple[Any, Any]:
    """Environment for a fresh database, then Django. Returns (temp dir, PG cleanup).

    ``keep``: the data directory (the SQLite database, the log's signing key, the witness file)
    is a fixed one, kept, so a log built once can be verified again later."""
    tmp: Any
    if keep:
        name = Path(database_url).name if database_url else "sqlite"
        tmp = Path(tempfile.gettempdir()) / f"vetline-archive-bench-kept-{name}{suffix}"
        tmp.mkdir(exist_ok=True)
        os.environ["VETLINE_DATA_DIR"] = str(tmp)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="vetline-archive-bench-")
        os.environ["VETLINE_DATA_DIR"] = tmp.name
    os.environ["VETLINE_ENV"] = "test"
    # Jobs are queued, as in production, not run inline as in the test suite: the
    # records_archived kick of each batch queues its receivers' jobs, which are not ingest.
    os.environ["VETLINE_JOBS_IMMEDIATE"] = "0"
    os.environ.pop("REDIS_URL", None)
    cleanup = None
    if database_url:
        os.environ["DATABASE_URL"], cleanup = _pg_database(database_url, suffix, keep=keep)
    else:
        os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "vetline.settings"
    sys.path.insert(0, str(ROOT))
    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)  # one log line a batch is not what is measured
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return tmp, cleanup


def _teardown(cleanup: Any) -> None:
    from django.db import connection

    connection.close()
    if cleanup is not None:
        admin, name = cleanup
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _accounts(*handles: str, email: str = "bench@example.com") -> list[Any]:
    from vetline.accounts.models import SocialAccount
    from vetline.identity.models import Person

    owner = Person.objects.create_user(email=email, password="x" * 16, full_name="B")
    return [
        SocialAccount.objects.create(network="x", handle=h, kind="corporate", owner=owner)
        for h in handles
    ]


# --------------------------------------------------------------------------- raw inserts


class _Raw:
    """Plain bulk inserts of prepared rows: no Vetline code, the driver only."""

    def __init__(self) -> None:
        from django.db import connection

        self.connection = connection
        self.postgres = connection.vendor == "postgresql"

    def bulk(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """COPY (PostgreSQL) or multi-row INSERT statements of at most 32,766 values
        (SQLite), in the caller's transaction."""
        cols = ", ".join(f'"{c}"' for c in columns)
        if self.postgres:
            with (
                self.connection.cursor() as cursor,
                cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        raw = self.connection.connection
        per = 32766 // len(columns)
        one = "(" + ", ".join(["?"] * len(columns)) + ")"
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            raw.execute(
                f"INSERT INTO {table} ({cols}) VALUES " + ", ".join([one] * len(chunk)),
                [v for row in chunk for v in row],
            )

    def copy_binary(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """PostgreSQL's binary COPY (JSON columns given as their text)."""
        from psycopg import pq
        from psycopg.adapt import Dumper

        class JsonText(Dumper):
            format = pq.Format.BINARY
            oid = 3802  # jsonb: version 1, then the text

            def dump(self, obj: str) -> bytes:
                return b"\x01" + obj.encode()

        cols = ", ".join(f'"{c}"' for c in columns)
        with self.connection.cursor() as cursor:
            driver = cursor.cursor
            driver.execute(f"SELECT {cols} FROM {table} LIMIT 0")
            types = [column.type_code for column in driver.description]
            driver.adapters.register_dumper(None, JsonText)
            with driver.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)

    def executemany(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        cols = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join(["%s"] * len(columns))
        with self.connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)


def _raw_rows(items: list[dict[str, Any]], account_id: int, offset: int) -> list[tuple[Any, ...]]:
    """The record rows ingest would write for ``items``, prepared in advance (untimed)."""
    from django.utils import timezone

    from vetline.archive.actions import _RECORD_COLUMNS
    from vetline.archive.items import clean_item
    from vetline.archive.log import db_datetime, db_json

    assert _RECORD_COLUMNS[-1] == "log_index"
    adapt = db_datetime()
    now = adapt(timezone.now(), None)
    rows = []
    for i, item in enumerate(items):
        c = clean_item(item)
        rows.append(
            (
                "x",
                account_id,
                c.remote_id,
                1,
                None,
                c.record_class,
                c.kind,
                c.direction,
                c.author,
                db_json(c.participants),
                c.conversation_id,
                c.thread_id,
                c.parent_remote_id,
                c.text,
                db_json(c.attachments),
                adapt(c.network_timestamp, None),
                now,
                c.raw_payload,
                c.raw_payload_sha256,
                c.raw_payload_sha256,
                c.adopted,
                c.approval_ref,
                "raw",
                offset + i,
            )
        )
    return rows


# --------------------------------------------------------------------------- phases


def ingest_phase(args: argparse.Namespace) -> dict[str, Any]:
    _, cleanup = _setup(args.database_url, "_bench")
    from django.db import connection, transaction

    from vetline.archive.actions import _RECORD_COLUMNS, ingest_batch
    from vetline.archive.models import ArchivedRecord, LogLeaf

    (account,) = _accounts("@bench")
    n: int = args.items
    size: int = args.batch
    items = _items("m", n)
    raw = _Raw()
    table = ArchivedRecord._meta.db_table
    leaf_table = LogLeaf._meta.db_table
    leaf_columns = ("index", "leaf_hash", "kind", "object_id")

    def records(rows: list[tuple[Any, ...]]) -> None:
        raw.bulk(table, _RECORD_COLUMNS, rows)

    def records_binary(rows: list[tuple[Any, ...]]) -> None:
        raw.copy_binary(table, _RECORD_COLUMNS, rows)

    def records_and_leaves(rows: list[tuple[Any, ...]]) -> None:
        raw.bulk(table, _RECORD_COLUMNS, rows)
        raw.bulk(leaf_table, leaf_columns, [(r[-1], os.urandom(32), 1, r[-1]) for r in rows])

    def records_executemany(rows: list[tuple[Any, ...]]) -> None:
        raw.executemany(table, _RECORD_COLUMNS, rows)

    # name -> how; each with its own account and log indices (never colliding), rows prepared
    # in advance (untimed)
    how = {
        "raw_bulk_insert": records,
        **({"raw_copy_binary": records_binary} if raw.postgres else {}),
        "raw_bulk_insert_with_leaves": records_and_leaves,
        "raw_executemany": records_executemany,
    }
    variants = []
    for number, (name, insert) in enumerate(how.items(), start=1):
        (owner,) = _accounts(f"@{name}", email=f"{name}@example.com")
        variants.append((name, insert, _raw_rows(items, owner.pk, number * RAW_LOG_INDEX)))

    # warm-up (connections, caches, statement cache), not timed
    ingest_batch(items=_items("w", 200), account=account, source="bench", actor=None, screen=False)
    load_start = os.getloadavg()[0]
    times = dict.fromkeys(["ingest", *how], 0.0)
    cpu = dict.fromkeys(times, 0.0)
    ingested = 0
    perf = time.perf_counter
    process_time = time.process_time
    for start in range(0, n, size):
        stop = start + size
        t0, c0 = perf(), process_time()
        report = ingest_batch(
            items=items[start:stop], account=account, source="bench", actor=None, screen=False
        )
        times["ingest"] += perf() - t0
        cpu["ingest"] += process_time() - c0
        ingested += report.ingested
        for name, insert, rows in variants:
            t0, c0 = perf(), process_time()
            with transaction.atomic():
                insert(rows[start:stop])
            times[name] += perf() - t0
            cpu[name] += process_time() - c0
    load_end = os.getloadavg()[0]

    fts = _full_text_matches(account.pk)
    vendor = connection.vendor
    with connection.cursor() as cursor:
        cursor.execute("SELECT sqlite_version()" if vendor == "sqlite" else "SHOW server_version")
        version = str(cursor.fetchone()[0])
    _teardown(cleanup)

    def rate(seconds: float) -> int:
        return round(n / seconds)

    plain_method = "COPY FROM STDIN (text)" if vendor == "postgresql" else METHODS["sqlite"]
    fastest = [name for name in ("raw_bulk_insert", "raw_copy_binary") if name in how]
    best = min(fastest, key=lambda name: times[name])
    best_method = plain_method if best == "raw_bulk_insert" else METHODS[best]

    return {
        "database": vendor,
        "database_version": version,
        "items": n,
        "batch_size": size,
        "ingested": ingested,
        "ingest_seconds": round(times["ingest"], 3),
        "ingest_msgs_per_s": rate(times["ingest"]),
        # the headline baseline: the fastest plain way to put these record rows in the table
        "raw_bulk_insert_method": best_method,
        "raw_bulk_insert_seconds": round(times[best], 3),
        "raw_bulk_insert_msgs_per_s": rate(times[best]),
        "ratio_ingest_to_raw": round(times[best] / times["ingest"], 3),
        "raw_variants": {
            name: {
                "method": METHODS[name] if name != "raw_bulk_insert" else plain_method,
                "msgs_per_s": rate(times[name]),
                "ratio_ingest_to_it": round(times[name] / times["ingest"], 3),
            }
            for name in how
        },
        # CPU time of this process (time.process_time) over the same batches: on a shared
        # machine the wall times above include waiting for a CPU. On SQLite the database engine
        # runs in this process, so this is all the work; on PostgreSQL it leaves out the server's.
        "cpu_seconds_of_this_process": {name: round(cpu[name], 3) for name in times},
        "cpu_scope": (
            "this process, database engine included"
            if vendor == "sqlite"
            else "this process only (the client), not the database server"
        ),
        **(
            {
                "ingest_msgs_per_cpu_s": rate(cpu["ingest"]),
                "raw_bulk_insert_msgs_per_cpu_s": rate(cpu[best]),
                "ratio_ingest_to_raw_cpu": round(cpu[best] / cpu["ingest"], 3),
            }
            if vendor == "sqlite"
            else {"ingest_msgs_per_client_cpu_s": rate(cpu["ingest"])}
        ),
        "full_text_index_matches": fts,
        "full_text_index_caught_up": fts == ingested + 200,
        "load_average_1m": [round(load_start, 2), round(load_end, 2)],
        "measured": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _full_text_matches(account_id: int) -> int:
    """How many of the account's records the archive's own full-text search finds for a word
    every benchmark record holds: the index is written in the ingest transaction."""
    from vetline.archive.search import parse
    from vetline.archive.search_backends import SearchFilters, search_queryset

    return search_queryset(parse("competitive"), SearchFilters(account_id=account_id)).count()


def _batches(n: int, size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, n, size):
        yield _items("v", min(size, n - start), start)


def verify_phase(args: argparse.Namespace) -> dict[str, Any]:
    keep = bool(args.keep_verify_database)
    _, cleanup = _setup(args.database_url, "_bench_verify", keep=keep)
    from vetline.archive.actions import ingest_batch, sign_tree_head
    from vetline.archive.models import ArchivedRecord, TreeHead
    from vetline.archive.verification import _default_workers, verify_database

    n = args.verify_records
    build_s = None
    if not (keep and ArchivedRecord.objects.count() == n and TreeHead.objects.exists()):
        (account,) = _accounts("@verify")
        t0 = time.perf_counter()
        with tqdm(total=n, desc="building the log", unit="rec", file=sys.stderr) as bar:
            for batch in _batches(n, 10_000):
                ingest_batch(items=batch, account=account, source="bench", actor=None, screen=False)
                bar.update(len(batch))
        build_s = time.perf_counter() - t0
    # a head over everything (a reused log may have gained audit events since its last head)
    head = sign_tree_head()
    load_start = os.getloadavg()[0]
    workers = _default_workers()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0, c0 = time.perf_counter(), time.process_time()
    result = verify_database(workers=workers)
    verify_s, main_cpu = time.perf_counter() - t0, time.process_time() - c0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    load_end = os.getloadavg()[0]
    _teardown(cleanup)
    entries = result.report.entries_checked
    return {
        "verify_records": n,
        "verify_log_entries": entries,
        "verify_tree_heads": result.report.heads_checked,
        "verify_ok": (
            result.ok
            and result.report.heads_verified == result.report.heads_checked
            and head.tree_size == entries
        ),
        "verify_worker_processes": workers,
        "full_verify_seconds": round(verify_s, 3),
        # CPU time of this process and of the worker processes (on a shared machine the wall
        # time above includes waiting for a CPU)
        "full_verify_cpu_seconds": {
            "main_process": round(main_cpu, 3),
            "worker_processes": round(workers_cpu, 3),
        },
        "full_verify_cpu_us_per_entry": round((main_cpu + workers_cpu) / entries * 1e6, 2),
        "full_verify_entries_per_s": round(entries / verify_s),
        "full_verify_seconds_at_10M_records": round(verify_s * TARGET_VERIFY_RECORDS / n, 1),
        "full_verify_at_10M_is": (
            "measured" if n >= TARGET_VERIFY_RECORDS else f"extrapolated linearly from {n:,}"
        ),
        "target_full_verify_seconds_at_10M": TARGET_VERIFY_SECONDS,
        "verify_build_ingest_msgs_per_s": round(n / build_s) if build_s else "reused",
        "verify_load_average_1m": [round(load_start, 2), round(load_end, 2)],
    }


_ROUND_KEYS = (
    "measured",
    "ingest_msgs_per_s",
    "raw_bulk_insert_msgs_per_s",
    "ratio_ingest_to_raw",
    "ratio_ingest_to_raw_cpu",
    "load_average_1m",
)


def _rate(result: dict[str, Any]) -> int:
    return int(result["ingest_msgs_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--verify-records", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--phase", choices=["all", "ingest", "verify"], default="all")
    parser.add_argument("--rounds", type=int, default=3, help="ingest rounds (median kept)")
    parser.add_argument(
        "--keep-verify-database",
        action="store_true",
        help="keep the verification log (PostgreSQL: NAME_bench_verify; both: a fixed data "
        "directory with the signing key, and the SQLite database) and reuse it when it already "
        "holds --verify-records records (build once, measure again on a quiet machine)",
    )
    args = parser.parse_args()
    if args.phase != "all":
        phase = ingest_phase if args.phase == "ingest" else verify_phase
        print(json.dumps(phase(args)))
        return

    # each phase in its own process, on its own fresh database
    def run(phase: str) -> dict[str, Any]:
        cmd = [sys.executable, "-m", "bench.archive_ingest_bench", "--phase", phase]
        for name in ("items", "batch", "verify_records", "database_url"):
            cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
        if args.keep_verify_database:
            cmd.append("--keep-verify-database")
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"the {phase} phase failed:\n{done.stderr}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    # The ingest phase runs several times, each in a fresh process and database: the figures
    # are the round with the median ingest rate, and every round's figures are kept (a shared
    # machine's speed drifts by tens of percent over minutes; the ratio much less).
    rounds = sorted((run("ingest") for _ in range(max(1, args.rounds))), key=_rate)
    ingest = rounds[len(rounds) // 2]
    verify = run("verify") if args.verify_records else {}
    vendor = ingest["database"]
    result = {
        "benchmark": (
            "archive ingest (validation, hashing, log append, full-text index, commit; "
            "screening off) and full verification"
        ),
        **{k: ingest[k] for k in ("database", "database_version")},
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        **{k: v for k, v in ingest.items() if k not in ("database", "database_version")},
        "ingest_rounds": [
            {k: r[k] for k in _ROUND_KEYS if k in r}
            for r in sorted(rounds, key=lambda r: r["measured"])
        ],
        "ingest_figures_are": f"the median of {len(rounds)} rounds by ingest rate",
        "target_msgs_per_s": 20_000 if vendor == "sqlite" else 10_000,
        "target_ratio": 0.5,
        **verify,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    suffix = "" if vendor == "sqlite" else f"_{vendor}"
    out = ROOT / "bench" / "results" / f"archive_ingest{suffix}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
