"""Archive search latency: keyword + account + date range, first page of 50, newest first, through
``run_search`` (parse, plan choice, full-text index, filters, keyset page, and the audit event
every search writes), against baselines measured in the same run on the same windows, in an
order that turns with every query (whichever runs first finds the window cold):

* ``baseline_no_keyword``: the same account + date range page without the keyword, a plain read
  of the (account_id, captured_at, id) index: the floor a keyword search cannot beat;
* ``old_plan_matches_first``: the matches-first plan forced (SQLite: the only plan before plans
  were chosen; PostgreSQL: the planner left to itself), on the first --old-plan-queries queries;
* ``baseline_like``: the same filters with ``text LIKE '%word%'`` instead of the full-text index.

Also keyword-only pages (first and tenth) and keyword + on hold + date range over every account.

    python bench/archive_search_bench.py [--records 1000000] [--queries 200]
        [--old-plan-queries 20] [--database-url URL] [--data-dir DIR] [--output NAME]

Generates the records straight into a fresh database: prepared rows, one ``executemany`` per
chunk on SQLite and ``COPY`` on PostgreSQL, with the full-text index built once after the load
(FTS5 'rebuild' or CREATE INDEX). ``--data-dir DIR`` keeps the SQLite file there, and
``--database-url`` names a PostgreSQL database that is kept; either is reused by the next run
with the same record count. Texts are 10-20 words drawn from a 5,000-word
vocabulary with a Zipf distribution, so keywords of every frequency exist; queries are grouped
by how common their keyword is. One record a minute, spread over 20 accounts: a 90-day window of
one account holds about 6,500 records whatever the archive's size. Writes
bench/results/archive_search[_postgresql][_SIZE].json (no size suffix for 10M records, the
issue's target; --output names another file). At 10M records the SQLite file takes 5.6 GB and
about 8 minutes to generate, the PostgreSQL database about 10 GB and 10 minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).absolute().parents[1]
ACCOUNTS = 20
VOCAB = 5000
PAGE = 50
WINDOW_DAYS = 90
STEP_SECONDS = 60  # one record a minute: 1M records span about 1.9 years, 10M about 19
# keyword rank -> share of records containing it (Zipf s=1, 15 words a record): 5 ~ 27%,
# 50 ~ 3%, 500 ~ 0.3%, 3000 ~ 0.05%
BANDS = {"very_common": 5, "common": 50, "medium": 500, "rare": 3000}
BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _word(rank: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    out, n = "", rank
    while True:
        out += letters[n % 26]
        n //= 26
        if n == 0:
            break
    return "w" + out + "x"  # w…x: never a prefix of another word, never a stop word


VOCABULARY = [_word(r) for r in range(1, VOCAB + 1)]


def _texts(records: int) -> Iterator[str]:
    """The same texts, in the same order, for every run and size (seeded)."""
    rng = random.Random(42)
    cum: list[float] = []
    total = 0.0
    for r in range(1, VOCAB + 1):
        total += 1 / r
        cum.append(total)
    for _ in range(records):
        words = rng.choices(VOCABULARY, cum_weights=cum, k=rng.randint(10, 20))
        yield " ".join(words).capitalize() + "."


def _pg_database(url: str) -> None:
    """Create the database of ``url`` if it does not exist (it is kept, for the next run)."""
    import psycopg

    head, _, name = url.rpartition("/")
    with psycopg.connect(f"{head}/postgres", autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            admin.execute(f'CREATE DATABASE "{name}"')


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


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
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _people_and_accounts() -> tuple[Any, list[Any]]:
    from vetline.accounts.models import SocialAccount
    from vetline.identity.models import Person, RoleGrant

    owner = Person.objects.filter(email="bench@example.com").first()
    if owner is None:
        owner = Person.objects.create_user(
            email="bench@example.com", password="x" * 16, full_name="B"
        )
        RoleGrant.objects.create(person=owner, role="compliance_officer")
    accounts = []
    for i in range(ACCOUNTS):
        acc, _ = SocialAccount.objects.get_or_create(
            network="x",
            handle=f"@bench{i}",
            defaults={"kind": "employee" if i < 2 else "corporate", "owner": owner},
        )
        accounts.append(acc)
    return owner, accounts


def load(records: int, accounts: list[Any], chunk: int) -> tuple[float, float]:
    """Generate ``records`` rows straight into the table (no ingest path), then build the
    full-text index once. Returns (load seconds, index seconds)."""
    from django.db import connection, transaction

    from vetline.archive.models import ArchivedRecord

    mig = importlib.import_module("vetline.archive.migrations.0004_search")
    tsv = importlib.import_module("vetline.archive.migrations.0007_search_tsvector")
    vendor = connection.vendor
    fields = [f for f in ArchivedRecord._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields]
    adapt = connection.ops.adapt_datetimefield_value
    account_ids = [a.pk for a in accounts]

    def rows() -> Iterator[tuple[Any, ...]]:
        for i, text in enumerate(_texts(records)):
            at = BASE + dt.timedelta(seconds=i * STEP_SECONDS)
            handle = f"@user{i % 5000}"
            value = {
                "network": "x",
                "account_id": account_ids[i % ACCOUNTS],
                "remote_id": f"r{i:09d}",
                "version": 1,
                "previous_log_index": None,
                "record_class": "business_communication",
                "kind": "post" if i % 3 else "reply",
                "direction": "outbound" if i % 2 else "inbound",
                "author_handle": handle,
                "participants": f'["{handle}"]',
                "conversation_id": f"c{i // 10}",
                "thread_id": "",
                "parent_remote_id": "",
                "text": text,
                "attachments": "[]",
                "network_timestamp": at - dt.timedelta(seconds=30),
                "captured_at": at,
                "raw_payload": b"{}",
                "raw_payload_sha256": "0" * 64,
                "content_sha256": "0" * 64,
                "adopted": False,
                "approval_ref": None,
                "source": "bench",
                "log_index": i,
            }
            if vendor == "sqlite":
                value["network_timestamp"] = adapt(value["network_timestamp"])
                value["captured_at"] = adapt(at)
            yield tuple(value[c] for c in columns)

    with connection.cursor() as cur:  # index once after the load, not row by row
        if vendor == "sqlite":
            cur.execute(f"DROP TRIGGER IF EXISTS {mig.FTS}_ai")
            cur.execute("PRAGMA journal_mode=MEMORY")  # a bench load: no WAL copy of each page
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA cache_size=-1000000")
        else:
            cur.execute("DROP INDEX IF EXISTS archive_record_search_tsv")
    t0 = time.perf_counter()
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    if vendor == "sqlite":
        marks = ", ".join("%s" for _ in columns)
        sql = f"INSERT INTO archive_archivedrecord ({quoted}) VALUES ({marks})"
        it = rows()
        while batch := [r for _, r in zip(range(chunk), it, strict=False)]:
            with transaction.atomic(), connection.cursor() as cur:
                cur.executemany(sql, batch)
    else:
        with transaction.atomic(), connection.cursor() as cur:
            raw = cur.cursor  # the psycopg cursor under Django's wrapper
            with raw.copy(f"COPY archive_archivedrecord ({quoted}) FROM STDIN") as copy:
                for row in rows():
                    copy.write_row(row)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        if vendor == "sqlite":
            cur.execute(f"INSERT INTO {mig.FTS}({mig.FTS}) VALUES ('rebuild')")
            cur.execute(mig.SQLITE_UP[1])  # the insert trigger again
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA optimize")
        else:
            cur.execute(tsv.TSV_INDEX)
            cur.execute("VACUUM ANALYZE archive_archivedrecord")
    return load_s, time.perf_counter() - t0


def prepare_and_load(records: int, chunk: int = 20_000) -> dict[str, Any]:
    from django.core.management import call_command
    from django.db import connection

    from vetline.archive.models import ArchivedRecord

    call_command("migrate", verbosity=0)
    owner, accounts = _people_and_accounts()
    have = ArchivedRecord.objects.count()
    out: dict[str, Any] = {"owner": owner, "accounts": accounts, "reused": False}
    if have == records:
        out["reused"] = True
        return out
    if have:
        raise SystemExit(f"the database holds {have} records, not {records}: use a new one")
    out["load_seconds"], out["index_build_seconds"] = load(records, accounts, chunk)
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            out["database_bytes"] = cur.fetchone()[0]
    return out


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t) * 1000, out


def _summary(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(_pct(ms, 50), 2), "p95_ms": round(_pct(ms, 95), 2), "n": len(ms)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--old-plan-queries",
        type=int,
        default=20,
        help="queries per band for the old matches-first plan (it reads every match: slow)",
    )
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--database-url", default="", help="postgres://…/NAME (kept, reused)")
    parser.add_argument("--data-dir", default="", help="keep the SQLite database here (reused)")
    parser.add_argument("--output", default="", help="file name under bench/results/")
    args = parser.parse_args()

    tmp = None
    if not args.data_dir:
        tmp = tempfile.TemporaryDirectory(prefix="vetline-search-bench-")
    _setup(args.data_dir or (tmp.name if tmp else ""), args.database_url)
    from django.db import connection

    from vetline.archive.models import ArchivedRecord
    from vetline.archive.models_retention import LegalHold
    from vetline.archive.search_actions import parse_filters, run_search
    from vetline.archive.search_backends import PG_TSVECTOR, Plan, SearchFilters

    mig = importlib.import_module("vetline.archive.migrations.0004_search")
    loaded = prepare_and_load(args.records, args.chunk)
    owner, accounts = loaded["owner"], loaded["accounts"]
    vendor = connection.vendor
    sqlite = vendor == "sqlite"

    # --- queries -------------------------------------------------------------------------------
    span_days = args.records * STEP_SECONDS / 86400
    qrng = random.Random(7)

    def filters_for(window_days: int = WINDOW_DAYS) -> dict[str, Any]:
        first = BASE + dt.timedelta(days=qrng.uniform(0, max(0.0, span_days - window_days)))
        return {
            "account": accounts[qrng.randrange(ACCOUNTS)].pk,
            "since": first.date().isoformat(),
            "until": (first + dt.timedelta(days=window_days)).date().isoformat(),
        }

    def search(word: str, f: SearchFilters, plan: Plan = Plan.AUTO, after: str = "") -> Any:
        return run_search(actor=owner, query=word, filters=f, limit=PAGE, plan=plan, after=after)

    def like_page(word: str, f: SearchFilters) -> int:
        qs = ArchivedRecord.objects.defer("raw_payload").filter(
            account_id=f.account_id, captured_at__gte=f.since, captured_at__lt=f.until
        )
        qs = qs.filter(text__icontains=word)  # (I)LIKE %word%: no index can serve it
        return len(list(qs.order_by("-captured_at", "-id")[: PAGE + 1]))

    def records_containing(word: str) -> int:
        with connection.cursor() as cur:
            if sqlite:
                cur.execute(
                    f"SELECT count(*) FROM {mig.FTS} WHERE {mig.FTS} MATCH %s",
                    [f'{{text}} : "{word}"'],
                )
            else:
                cur.execute(
                    "SELECT count(*) FROM archive_archivedrecord"
                    f" WHERE {PG_TSVECTOR} @@ to_tsquery('simple', %s)",
                    [word],
                )
            return int(cur.fetchone()[0])

    results: dict[str, Any] = {}
    for band, rank in BANDS.items():
        word = VOCABULARY[rank - 1]
        new_ms: list[float] = []
        base_ms: list[float] = []
        old_ms: list[float] = []
        like_ms: list[float] = []
        hits: list[int] = []
        plans: dict[str, int] = {}
        checked: list[int] = []
        for _ in range(3):  # warm-up
            search(word, parse_filters(filters_for()))
        for i in range(args.queries):
            f = parse_filters(filters_for())
            # Each variant reads the same window; whichever runs first finds it cold in the
            # caches, so the order turns with every query and each variant is first as often.
            variants: list[tuple[str, Callable[[], Any]]] = [
                ("new", lambda f=f, word=word: search(word, f)),
                ("base", lambda f=f: search("", f)),
                ("like", lambda f=f, word=word: like_page(word, f)),
            ]
            if i < args.old_plan_queries:
                variants.append(("old", lambda f=f, word=word: search(word, f, Plan.MATCHES_FIRST)))
            turn = i % len(variants)
            timed = {name: _timed(fn) for name, fn in variants[turn:] + variants[:turn]}
            ms, res = timed["new"]
            new_ms.append(ms)
            hits.append(len(res.page.items))
            plans[res.page.plan.value] = plans.get(res.page.plan.value, 0) + 1
            checked.append(res.page.records_checked)
            base_ms.append(timed["base"][0])
            like_ms.append(timed["like"][0])
            assert timed["like"][1] >= len(res.page.items)
            if "old" in timed:
                old_ms.append(timed["old"][0])
                old = timed["old"][1]
                assert [r.pk for r in old.page.items] == [r.pk for r in res.page.items]
        docs = records_containing(word)
        row: dict[str, Any] = {
            "keyword": word,
            "records_containing_keyword": docs,
            "share_of_records": round(docs / args.records, 5),
            "mean_results_on_first_page": round(statistics.mean(hits), 1),
            "plans_chosen": plans,
            "mean_records_checked": round(statistics.mean(checked), 1),
            "search": _summary(new_ms),
            "baseline_no_keyword": _summary(base_ms),
            "baseline_like": _summary(like_ms),
            "ratio_p95_search_over_no_keyword": round(_pct(new_ms, 95) / _pct(base_ms, 95), 2),
            "ratio_p95_like_over_search": round(_pct(like_ms, 95) / _pct(new_ms, 95), 2),
        }
        if old_ms:
            row["old_plan_matches_first"] = _summary(old_ms)
            row["ratio_p95_old_plan_over_search"] = round(_pct(old_ms, 95) / _pct(new_ms, 95), 2)
        results[band] = row
        print(band, json.dumps(row), flush=True)

    # keyword only (no account, no dates), first page and tenth page by cursor
    deep: dict[str, Any] = {}
    for band in ("very_common", "common", "medium", "rare"):
        word = VOCABULARY[BANDS[band] - 1]
        first_ms, tenth_ms, old_first_ms = [], [], []
        plans = {}
        for i in range(max(20, args.queries // 10)):
            ms, res = _timed(lambda word=word: search(word, SearchFilters()))
            first_ms.append(ms)
            plans[res.page.plan.value] = plans.get(res.page.plan.value, 0) + 1
            if i < 5:
                old_first_ms.append(
                    _timed(lambda word=word: search(word, SearchFilters(), Plan.MATCHES_FIRST))[0]
                )
            for page_number in range(2, 11):
                if res.page.next_cursor is None:
                    break
                after = res.page.next_cursor.encode()
                ms, res = _timed(
                    lambda word=word, after=after: search(word, SearchFilters(), after=after)
                )
                if page_number == 10:
                    tenth_ms.append(ms)
        deep[band] = {
            "keyword": word,
            "plans_chosen": plans,
            "first_page": _summary(first_ms),
            "tenth_page": _summary(tenth_ms) if tenth_ms else None,
        }
        if old_first_ms:
            deep[band]["old_plan_first_page"] = _summary(old_first_ms)
        print("keyword only", band, json.dumps(deep[band]), flush=True)

    # "on hold": one whole-account hold, one on a person's two employee accounts with a date
    # range, one with a date range and a query; keyword + on hold + 90-day range, any account
    if not LegalHold.objects.filter(matter_name__startswith="bench").exists():
        whole = LegalHold.objects.create(matter_name="bench whole", placed_by=owner)
        whole.accounts.set([accounts[2]])
        by_person = LegalHold.objects.create(
            matter_name="bench person",
            placed_by=owner,
            date_from=BASE.date() + dt.timedelta(days=int(span_days * 0.1)),
            date_to=BASE.date() + dt.timedelta(days=int(span_days * 0.8)),
        )
        by_person.people.set([owner])
        narrow = LegalHold.objects.create(
            matter_name="bench query",
            placed_by=owner,
            date_from=BASE.date() + dt.timedelta(days=int(span_days * 0.5)),
            query=VOCABULARY[BANDS["medium"] - 1],
        )
        narrow.accounts.set([accounts[3], accounts[4]])
    held: dict[str, Any] = {}
    for band in ("common", "rare"):
        word = VOCABULARY[BANDS[band] - 1]
        held_ms, held_base_ms, counts = [], [], []
        for _ in range(max(20, args.queries // 4)):
            params = filters_for()
            params.pop("account")
            params["on_hold"] = "1"
            f = parse_filters(params)
            ms, res = _timed(lambda f=f, word=word: search(word, f))
            held_ms.append(ms)
            counts.append(len(res.page.items))
            held_base_ms.append(_timed(lambda f=f: search("", f))[0])
        held[band] = {
            "keyword": word,
            "mean_results_on_first_page": round(statistics.mean(counts), 1),
            "search": _summary(held_ms),
            "baseline_on_hold_no_keyword": _summary(held_base_ms),
        }
        print("on hold", band, json.dumps(held[band]), flush=True)

    size = f"{args.records / 1e6:g}M" if args.records >= 1e6 else f"{args.records // 1000}k"
    result = {
        "benchmark": "archive search: keyword + account + 90-day range, first page of 50",
        "database": vendor,
        "database_version": (
            connection.Database.sqlite_version
            if sqlite
            else str(connection.cursor().connection.info.server_version)
        ),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "records": args.records,
        "note": (
            f"Measured at {size} records. Timings are run_search end to end (parse, plan "
            "choice, query, page, audit event), no HTTP. Baselines in the same run: the same "
            "page without the keyword (an indexed account + date read); the matches-first plan "
            "forced ("
            + (
                "SQLite: the only plan before plans were chosen"
                if sqlite
                else "PostgreSQL: the planner left to itself, as before plans were chosen, but "
                "on the stored vector of migration 0007"
            )
            + "); LIKE '%word%'."
        ),
        "accounts": ACCOUNTS,
        "queries_per_band": args.queries,
        "load_seconds": loaded.get("load_seconds"),
        "index_build_seconds": loaded.get("index_build_seconds"),
        "bands": results,
        "keyword_only_no_filters": deep,
        "keyword_on_hold_90_days_any_account": held,
        "target_p95_ms_at_10M": 100,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    connection.close()
    # The 10M run is the headline; other sizes keep their own file (say archive_search_1m.json).
    sized = "" if args.records == 10_000_000 else f"_{size.lower()}"
    name = args.output or f"archive_search{'' if sqlite else '_' + vendor}{sized}.json"
    out = ROOT / "bench" / "results" / name
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
