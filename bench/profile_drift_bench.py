"""Profile drift detection throughput: how long the cursor-driven detector
(``vetline.profiles.actions.detect_drift``) takes to catch up over an archive where profile
snapshots are 1% of the records, and how long one kick takes after a capture batch, compared in
the same run against:

* ``baseline_scan_every_record``: the same detection done the obvious first way: walking *every*
  archived record in id order in batches, picking the snapshots out in Python, and reading each
  snapshot's proposal and active drift item one by one (two queries a snapshot), from the same
  starting cursor;
* ``baseline_compare_only``: the pure comparison (:func:`vetline.profiles.drift.compare` on the
  parsed snapshots, no database): the floor detection cannot beat.

    python bench/profile_drift_bench.py [--records 200000] [--accounts 200]
        [--database-url URL] [--data-dir DIR] [--output NAME]

Records are ingested through ``ingest_batch`` (screening off); every account's profile is
proposed, submitted and approved through the actions (so through the approval engine); half
the snapshots match the approved profile and half differ. Each detection run starts from a
fresh cursor and an empty drift table, so every run does the same work. Writes
bench/results/profile_drift[_postgresql].json.
"""

from __future__ import annotations

import argparse
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
SNAPSHOT_EVERY = 100  # 1% of records are profile snapshots


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


def load(records: int, accounts: int) -> dict[str, Any]:
    from django.core.management import call_command

    from vetline.accounts.models import AccountKind, Network, SocialAccount
    from vetline.archive.actions import ingest_batch
    from vetline.archive.models import ArchivedRecord
    from vetline.identity.models import Person, RoleGrant
    from vetline.identity.roles import Role
    from vetline.profiles import actions

    call_command("migrate", verbosity=0)
    if ArchivedRecord.objects.exists():
        raise SystemExit("the database already holds records: use a new one")
    from allauth.mfa.totp.internal.auth import TOTP

    officer = Person.objects.create_user(email="co@example.com", password="x" * 16)
    RoleGrant.objects.create(person=officer, role=Role.COMPLIANCE_OFFICER.value)
    TOTP.activate(officer, "JBSWY3DPEHPK3PXPBENCHAAA")
    t0 = time.perf_counter()
    owned = []
    for i in range(accounts):
        owner = Person.objects.create_user(email=f"e{i}@example.com", password="x" * 16)
        RoleGrant.objects.create(person=owner, role=Role.EMPLOYEE.value)
        account = SocialAccount.objects.create(
            network=Network.LINKEDIN, handle=f"adv-{i}", kind=AccountKind.EMPLOYEE, owner=owner
        )
        revision = actions.save_proposal(
            actor=owner,
            account=account,
            display_name=account.handle,
            bio="Financial advisor at Harbor Point.",
            submit=True,
        )
        actions.approve_proposal(
            actor=officer, proposal=revision.proposal, revision_number=revision.number
        )
        owned.append(account)
    approve_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    batch = 10_000
    per_account = max(1, batch // accounts)
    n = 0
    while n < records:
        for account in owned:
            items = []
            for _ in range(per_account):
                if n >= records:
                    break
                if n % SNAPSHOT_EVERY == 0:
                    matches = (n // SNAPSHOT_EVERY) % 2 == 0
                    bio = "Financial advisor at Harbor Point." if matches else f"Hot tip {n}"
                    items.append(
                        {
                            "remote_id": f"profile:{account.handle}:{n}",
                            "kind": "profile_snapshot",
                            "direction": "outbound",
                            "text": f"Advisor\n{bio}",
                            "raw": {"display_name": account.handle, "bio": bio},
                        }
                    )
                else:
                    items.append(
                        {
                            "remote_id": f"r{n}",
                            "kind": "post",
                            "direction": "outbound",
                            "text": f"Bench post {n}.",
                        }
                    )
                n += 1
            if items:
                ingest_batch(items=items, account=account, source="bench", actor=None, screen=False)
            if n >= records:
                break
    return {
        "approve_seconds": round(approve_s, 1),
        "ingest_seconds": round(time.perf_counter() - t0, 1),
    }


def _reset() -> None:
    from django.db import transaction

    from vetline.connectors.models import Alert, AlertRecipient
    from vetline.profiles.models import DriftCursor, ProfileDrift

    with transaction.atomic():
        ProfileDrift.objects.all().delete()
        AlertRecipient.objects.all().delete()
        Alert.objects.all().delete()
        DriftCursor.objects.all().delete()


def scan_every_record(batch_size: int = 200) -> dict[str, int]:
    """The baseline: walk every record in id order, pick the snapshots out in Python."""
    from django.db import transaction
    from django.utils import timezone

    from vetline.archive.models import ArchivedRecord
    from vetline.profiles.actions import DRIFT_CURSOR, _examine_snapshot
    from vetline.profiles.models import DriftCursor

    counts: dict[str, int] = {}
    while True:
        with transaction.atomic():
            cursor, _ = DriftCursor.objects.get_or_create(name=DRIFT_CURSOR)
            rows = list(
                ArchivedRecord.objects.filter(pk__gt=cursor.last_record_id).order_by("pk")[
                    :batch_size
                ]
            )
            if not rows:
                return counts
            for record in rows:
                if record.kind == "profile_snapshot":
                    outcome = _examine_snapshot(record)
                    counts[outcome] = counts.get(outcome, 0) + 1
            cursor.last_record_id = rows[-1].pk
            cursor.updated_at = timezone.now()
            cursor.save()


def compare_only() -> dict[str, int]:
    from vetline.archive.models import ArchivedRecord
    from vetline.profiles.drift import ProfileFields, compare, live_fields

    approved = ProfileFields(display_name="x", bio="Financial advisor at Harbor Point.")
    raws = list(
        ArchivedRecord.objects.filter(kind="profile_snapshot").values_list("raw_payload", "text")
    )
    t0 = time.perf_counter()
    drifted = sum(1 for raw, text in raws if compare(approved, live_fields(bytes(raw), text=text)))
    compare_only.seconds = time.perf_counter() - t0  # type: ignore[attr-defined]
    return {"drift": drifted}


def timed(fn: Any, runs: int) -> dict[str, Any]:
    times, outcome = [], {}
    for _ in range(runs):
        _reset()
        t0 = time.perf_counter()
        outcome = fn()
        times.append(time.perf_counter() - t0)
    return {"runs": runs, "median_s": round(statistics.median(times), 3), "outcomes": outcome}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--output", default="")
    args = parser.parse_args()
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="vetline-drift-bench-")
    _setup(data_dir, args.database_url)

    from django.db import connection

    from vetline.archive.actions import ingest_batch
    from vetline.archive.models import ArchivedRecord
    from vetline.profiles.actions import detect_drift

    load_s = load(args.records, args.accounts)
    snapshots = ArchivedRecord.objects.filter(kind="profile_snapshot").count()
    total_records = ArchivedRecord.objects.count()
    results = {
        "cursor_detector": timed(detect_drift, args.runs),
        "baseline_scan_every_record": timed(scan_every_record, args.runs),
    }
    compare_only()
    results["baseline_compare_only"] = {
        "median_s": round(compare_only.seconds, 3)  # type: ignore[attr-defined]
    }
    # Steady state: the detector is at the head; one capture batch of 1,000 records (10
    # snapshots) arrives and the kick runs.
    from vetline.accounts.models import SocialAccount

    account = SocialAccount.objects.get(handle="adv-0")
    kick_times = []
    for run in range(10):
        items = [
            {
                "remote_id": f"k{run}-{i}",
                "kind": "profile_snapshot" if i % SNAPSHOT_EVERY == 0 else "post",
                "direction": "outbound",
                "text": f"Advisor\nkick {run} {i}",
                "raw": {"display_name": "adv-0", "bio": f"kick {run} {i}"},
            }
            for i in range(1000)
        ]
        ingest_batch(items=items, account=account, source="bench", actor=None, screen=False)
        t0 = time.perf_counter()
        detect_drift()
        kick_times.append((time.perf_counter() - t0) * 1000)
    cursor_s = results["cursor_detector"]["median_s"]
    baseline_s = results["baseline_scan_every_record"]["median_s"]
    out = {
        "benchmark": "profile_drift",
        "what": "drift detection catch-up over the archive, and one kick after a capture batch",
        "database": connection.vendor,
        "records": total_records,
        "profile_snapshots": snapshots,
        "accounts_with_approved_profiles": args.accounts,
        "catch_up_records_per_s": round(total_records / cursor_s) if cursor_s else None,
        "catch_up_snapshots_per_s": round(snapshots / cursor_s) if cursor_s else None,
        "speedup_over_scanning_every_record": round(baseline_s / cursor_s, 2) if cursor_s else None,
        "kick_after_1000_record_batch_ms": {
            "p50": round(statistics.median(kick_times), 2),
            "max": round(max(kick_times), 2),
        },
        "results": results,
        "load_seconds": load_s,
        "environment": {
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        },
    }
    suffix = "_postgresql" if connection.vendor == "postgresql" else ""
    path = ROOT / "bench" / "results" / (args.output or f"profile_drift{suffix}.json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
