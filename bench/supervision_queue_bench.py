"""Review queue page latency with 100,000 open review items: server time of ``GET /supervision/``
through the full Django stack (middleware, session, scoping, template), for a reviewer who sees
one queue of two and for a supervision manager who sees both, on the first page, a deep page,
one queue, and "only mine". Compared in the same run against:

* ``baseline_orm_page``: the bare ORM read of the same first page (50 rows, no HTTP, no
  template): the floor the page cannot beat;
* ``baseline_archive_list``: the archive's existing list page (``GET /archive/``, a paginated
  list of 50 records over the same 100,000 archived records), a page of the same shape.

The number of queries of every request is recorded and must be the same for every page and
every role (the test suite asserts it too: vetline/supervision/tests/test_views.py).

    python bench/supervision_queue_bench.py [--items 100000] [--requests 200]
        [--database-url URL] [--data-dir DIR]

Records are ingested through ``ingest_batch`` (screening off) and review items created in bulk
(prepared rows, as the flag follower's ``bulk_create`` does), spread over two queues and three
states, with ages over 60 days. Writes bench/results/supervision_queue[_postgresql].json.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).absolute().parents[1]
TARGET_P95_MS = 150.0


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _pg_database(url: str) -> None:
    """Create the database of ``url`` if it does not exist (it is kept, for the next run)."""
    import psycopg

    head, _, name = url.rpartition("/")
    with psycopg.connect(f"{head}/postgres", autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            admin.execute(f'CREATE DATABASE "{name}"')


def _setup(data_dir: str, database_url: str) -> None:
    os.environ["VETLINE_DATA_DIR"] = data_dir
    os.environ["VETLINE_ENV"] = "test"
    os.environ["VETLINE_JOBS_IMMEDIATE"] = "0"  # no flag follower kicked during the load
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


def load(items: int) -> dict[str, Any]:
    from django.core.management import call_command
    from django.utils import timezone

    from vetline.accounts.models import AccountKind, Network, SocialAccount
    from vetline.archive.actions import ingest_batch
    from vetline.archive.models import ArchivedRecord
    from vetline.identity.models import Person, RoleGrant
    from vetline.identity.roles import Role
    from vetline.supervision import actions
    from vetline.supervision.models import ReviewItem, ReviewQueue, SupervisionSettings

    call_command("migrate", verbosity=0)

    def person(email: str, role: Role) -> Any:
        p = Person.objects.filter(email=email).first()
        if p is None:
            p = Person.objects.create_user(email=email, password="x" * 16, full_name=email[:3])
            RoleGrant.objects.create(person=p, role=role.value)
            if p.mfa_required:  # enrolled, as every compliance officer must be
                from allauth.mfa.totp.internal.auth import TOTP

                TOTP.activate(p, "JBSWY3DPEHPK3PXPBENCHAAA")
        return p

    co = person("co@example.com", Role.COMPLIANCE_OFFICER)
    sup = person("sup@example.com", Role.SUPERVISOR)
    sup2 = person("sup2@example.com", Role.SUPERVISOR)
    accounts = []
    for handle in ("@bench-a", "@bench-b"):
        acc = SocialAccount.objects.filter(handle=handle).first()
        if acc is None:
            acc = SocialAccount.objects.create(
                network=Network.X, handle=handle, kind=AccountKind.CORPORATE, owner=co
            )
        accounts.append(acc)
    reused = ReviewItem.objects.count() == items
    if not reused:
        if ArchivedRecord.objects.exists():
            raise SystemExit("the database already holds records: use a new one")
        queue_a = actions.create_queue(actor=co, name="A", reviewers=[sup], is_default=True)
        queue_b = actions.create_queue(actor=co, name="B", reviewers=[sup2])
        t0 = time.perf_counter()
        batch = 10_000
        for start in range(0, items, batch):
            account = accounts[(start // batch) % 2]
            ingest_batch(
                items=[
                    {
                        "remote_id": f"r{n}",
                        "kind": "post",
                        "direction": "outbound",
                        "text": f"Bench record {n}: we guarantee nothing.",
                    }
                    for n in range(start, min(items, start + batch))
                ],
                account=account,
                source="bench",
                actor=None,
                screen=False,
            )
        ingest_s = time.perf_counter() - t0
        now = timezone.now()
        t0 = time.perf_counter()
        rows = []
        for i, (pk, account_id, captured) in enumerate(
            ArchivedRecord.objects.order_by("pk").values_list("pk", "account_id", "captured_at")
        ):
            created = now - dt.timedelta(minutes=(items - i) * 60 * 24 * 60 // items)
            state = ("open", "claimed", "needs_info")[i % 3]
            rows.append(
                ReviewItem(
                    record_id=pk,
                    origin_key="flag:bench:v1",
                    source="flag",
                    queue=queue_a if i % 2 == 0 else queue_b,
                    state=state,
                    assignee=(sup if i % 2 == 0 else sup2) if state != "open" else None,
                    severity=3,
                    rule_ids=["promissory"],
                    hits=[],
                    policy_name="bench",
                    policy_version=1,
                    account_id_copy=account_id,
                    record_captured_at=captured,
                    excerpt=f"Bench record {i}: we guarantee nothing.",
                    created_at=created,
                    due_at=created + dt.timedelta(days=5),
                )
            )
            if len(rows) == 5000:
                ReviewItem.objects.bulk_create(rows)
                rows = []
        ReviewItem.objects.bulk_create(rows)
        items_s = time.perf_counter() - t0
        setting = SupervisionSettings.load()
        setting.flag_cursor_record_id = ArchivedRecord.objects.order_by("-pk").values_list(
            "pk", flat=True
        )[0]
        setting.save()
    else:
        ingest_s = items_s = 0.0
    return {
        "co": co,
        "sup": sup,
        "queue_a": ReviewQueue.objects.get(name="A"),
        "reused": reused,
        "load_seconds": {"ingest": round(ingest_s, 1), "review_items": round(items_s, 1)},
    }


def measure(fn: Callable[[], int], requests: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):  # warm caches and the template loader
        fn()
    times: list[float] = []
    queries: set[int] = set()
    for _ in range(requests):
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            status = fn()
            times.append((time.perf_counter() - t0) * 1000)
        assert status == 200, (fn, status)
        queries.add(len(ctx.captured_queries))
    return {
        "requests": requests,
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(_pct(times, 95), 2),
        "max_ms": round(max(times), 2),
        "queries": sorted(queries),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--output", default="")
    args = parser.parse_args()
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="vetline-queue-bench-")
    _setup(data_dir, args.database_url)

    from django.db import connection
    from django.test import Client

    from vetline.supervision.models import ReviewItem

    world = load(args.items)
    open_items = ReviewItem.objects.exclude(state="closed").count()
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    reviewer, manager = Client(), Client()
    reviewer.force_login(world["sup"])
    manager.force_login(world["co"])
    queue_a = world["queue_a"].pk

    def page(client: Client, url: str) -> Callable[[], int]:
        def get() -> int:
            response = client.get(url)
            if response.status_code != 200:
                print(url, response.status_code, response.get("Location"))
            return response.status_code

        return get

    def orm_page() -> int:
        list(
            ReviewItem.objects.filter(is_open=True)
            .select_related("queue", "assignee")
            .order_by("created_at", "id")[:50]
        )
        return 200

    cases = {
        "reviewer_first_page": page(reviewer, "/supervision/"),
        "reviewer_page_500": page(reviewer, "/supervision/?page=500"),
        "reviewer_mine": page(reviewer, "/supervision/?mine=1"),
        "manager_first_page": page(manager, "/supervision/"),
        "manager_one_queue": page(manager, f"/supervision/?queue={queue_a}"),
        "manager_page_1000": page(manager, "/supervision/?page=1000"),
        "baseline_orm_page": orm_page,
        "baseline_archive_list": page(manager, "/archive/"),
    }
    results = {name: measure(fn, args.requests) for name, fn in cases.items()}
    queue_cases = [k for k in results if not k.startswith("baseline")]
    worst = max(results[k]["p95_ms"] for k in queue_cases)
    query_counts = sorted({q for k in queue_cases for q in results[k]["queries"]})
    # Fixed: the same count on every page of a role, whatever the page or filter (a reviewer's
    # page reads their queue ids first: one query more than a manager's).
    per_role = {
        role: sorted({q for k in queue_cases if k.startswith(role) for q in results[k]["queries"]})
        for role in ("reviewer", "manager")
    }
    out = {
        "benchmark": "supervision_queue",
        "what": "GET /supervision/ server time with 100,000 open review items",
        "database": connection.vendor,
        "open_items": open_items,
        "target_p95_ms": TARGET_P95_MS,
        "worst_queue_p95_ms": worst,
        "meets_target": worst <= TARGET_P95_MS,
        "queue_page_query_counts": query_counts,
        "queue_page_query_counts_by_role": per_role,
        "fixed_query_count": all(len(v) == 1 for v in per_role.values()),
        "results": results,
        "load": world["load_seconds"],
        "reused_database": world["reused"],
        "environment": {
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        },
    }
    suffix = "_postgresql" if connection.vendor == "postgresql" else ""
    path = ROOT / "bench" / "results" / (args.output or f"supervision_queue{suffix}.json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "results"}, indent=2))
    for name, r in results.items():
        print(f"{name:24} p50 {r['p50_ms']:8.2f} ms  p95 {r['p95_ms']:8.2f} ms  q={r['queries']}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
