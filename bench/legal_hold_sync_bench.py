"""Legal hold reconciliation: how long ``sync_blob_legal_holds`` takes to carry legal holds to
the blob store, compared in the same run against:

* ``baseline_wanted_query``: only the query that lists the attachments of every held record
  (the floor the table step cannot beat: it must read them);
* ``baseline_raw_put_legal_hold``: plain boto3 ``PutObjectLegalHold`` calls, one per blob, on
  the same number of blobs, no listing and no bookkeeping (the floor of the store step).

Two parts:

1. **Table** (local backend: nothing to ask a store): ``--records`` records, one unique
   attachment each, spread over 20 accounts; a hold over half the accounts. First run (the
   wanted set recorded: rows and hold links inserted), a second run (nothing to do), a release
   (every row un-wanted, links removed).
2. **S3** (moto's standalone server over HTTP, Object Lock bucket; no S3 service is reachable
   here, so absolute times are moto's, not AWS's): ``--blobs`` blobs stored and held. First run
   (legal hold ON: one version listing and one ``PutObjectLegalHold`` per blob), re-run, release
   (OFF for every blob).

    python bench/legal_hold_sync_bench.py [--records 100000] [--blobs 1000]
        [--database-url URL] [--output NAME]

Writes bench/results/legal_hold_sync[_postgresql].json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).absolute().parents[1]
ACCOUNTS = 20


def _setup(data_dir: str, database_url: str) -> None:
    os.environ["VETLINE_DATA_DIR"] = data_dir
    os.environ["VETLINE_ENV"] = "test"
    os.environ["VETLINE_JOBS_IMMEDIATE"] = "0"  # nothing kicked: the runs are timed by hand
    os.environ.pop("REDIS_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "vetline.settings"
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ["AWS_ACCESS_KEY_ID"] = "vetline-bench"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "vetline-bench"
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1"]))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _max_rss_mb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return round(time.perf_counter() - t0, 3), value


def _officer() -> Any:
    from vetline.identity.models import Person, RoleGrant
    from vetline.identity.roles import Role

    officer = Person.objects.create_user(email="co@example.com", password="x" * 16)
    RoleGrant.objects.create(person=officer, role=Role.COMPLIANCE_OFFICER.value)
    return officer


def _accounts(officer: Any, prefix: str) -> list[Any]:
    from vetline.accounts.models import AccountKind, Network, SocialAccount

    return [
        SocialAccount.objects.create(
            network=Network.X, handle=f"@{prefix}{i}", kind=AccountKind.CORPORATE, owner=officer
        )
        for i in range(ACCOUNTS)
    ]


def _ingest(accounts: list[Any], names: list[str], prefix: str) -> None:
    from vetline.archive.actions import ingest_batch

    for a, account in enumerate(accounts):
        mine = names[a :: len(accounts)]
        for start in range(0, len(mine), 5000):
            ingest_batch(
                items=[
                    {
                        "remote_id": f"{prefix}{a}-{start + i}",
                        "kind": "post",
                        "direction": "outbound",
                        "text": f"post {start + i}",
                        "network_timestamp": "2025-03-01T10:00:00Z",
                        "attachments": [name],
                    }
                    for i, name in enumerate(mine[start : start + 5000])
                ],
                account=account,
                source="bench",
                actor=None,
                screen=False,
            )


def _run(trigger: str) -> Any:
    from vetline.archive.retention_actions import sync_blob_legal_holds

    run = sync_blob_legal_holds(trigger=trigger)
    assert run is not None and run.status == "done", run
    return run


def table_part(officer: Any, accounts: list[Any], records: int) -> dict[str, Any]:
    from vetline.archive.blobs import LocalBlobStore, default_store
    from vetline.archive.models import ArchivedRecord
    from vetline.archive.models_retention import HeldBlob, LegalHold
    from vetline.archive.retention_actions import place_legal_hold, release_legal_hold
    from vetline.archive.retention_selectors import records_under_hold

    store = default_store()
    assert isinstance(store, LocalBlobStore)
    names = []
    for i in range(records):  # ingest refuses attachments the store lacks; written unsynced
        data = f"table {i}".encode()
        name = hashlib.sha256(data).hexdigest()
        path = store.path_for(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        names.append(name)
    load_s, _ = _timed(lambda: _ingest(accounts, names, "t"))
    hold = place_legal_hold(actor=officer, matter_name="bench", accounts=accounts[: ACCOUNTS // 2])

    def wanted_query() -> int:
        qs = records_under_hold(
            ArchivedRecord.objects.all(), holds=LegalHold.objects.filter(pk=hold.pk)
        )
        return sum(len(a) for a in qs.values_list("attachments", flat=True).iterator(2000))

    baseline_s, held_blobs = _timed(wanted_query)
    first_s, first = _timed(lambda: _run("bench"))
    again_s, again = _timed(lambda: _run("bench"))
    release_legal_hold(actor=officer, hold=hold, reason="bench")
    release_s, _ = _timed(lambda: _run("bench"))
    assert first.wanted_count == held_blobs and again.changed == 0, (first, held_blobs)
    assert not HeldBlob.objects.filter(wanted=True).exists()
    return {
        "records": records,
        "held_blobs": held_blobs,
        "load_seconds": round(load_s, 1),
        "baseline_wanted_query_s": baseline_s,
        "first_run_s": first_s,
        "rerun_nothing_to_do_s": again_s,
        "release_run_s": release_s,
        "first_run_vs_wanted_query": round(first_s / baseline_s, 2) if baseline_s else None,
    }


def s3_part(officer: Any, accounts: list[Any], blobs: int) -> dict[str, Any]:
    import boto3
    from django.conf import settings
    from moto.server import ThreadedMotoServer

    from vetline.archive.blobs import default_store
    from vetline.archive.retention_actions import place_legal_hold, release_legal_hold

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        bucket = f"vetline-bench-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        settings.VETLINE_BLOB_BACKEND = "s3"
        settings.VETLINE_S3_BUCKET = bucket
        settings.VETLINE_S3_ENDPOINT_URL = endpoint
        settings.VETLINE_S3_REGION = "us-east-1"
        store = default_store()
        names = [store.put(f"s3 blob {i}".encode()) for i in range(blobs)]
        _ingest(accounts, names, "s")
        hold = place_legal_hold(actor=officer, matter_name="bench s3", accounts=accounts)
        first_s, first = _timed(lambda: _run("bench"))
        again_s, again = _timed(lambda: _run("bench"))
        release_legal_hold(actor=officer, hold=hold, reason="bench")
        release_s, released = _timed(lambda: _run("bench"))
        counts = (first.turned_on, again.changed, released.turned_off, released.failed)
        assert counts == (blobs, 0, blobs, 0), counts

        def raw() -> None:
            for name in names:
                client.put_object_legal_hold(Bucket=bucket, Key=name, LegalHold={"Status": "ON"})

        raw_s, _ = _timed(raw)
        return {
            "blobs": blobs,
            "first_run_on_s": first_s,
            "per_blob_on_ms": round(first_s / blobs * 1000, 2),
            "rerun_nothing_to_do_s": again_s,
            "release_run_off_s": release_s,
            "baseline_raw_put_legal_hold_s": raw_s,
            "first_run_vs_raw_calls": round(first_s / raw_s, 2) if raw_s else None,
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--blobs", type=int, default=1000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--output", default="")
    args = parser.parse_args()
    _setup(tempfile.mkdtemp(prefix="vetline-hold-bench-"), args.database_url)

    from django.core.management import call_command
    from django.db import connection

    from vetline.core.context import RequestContext, use_context

    call_command("migrate", verbosity=0)
    with use_context(RequestContext(channel="cli")):
        officer = _officer()
        table = table_part(officer, _accounts(officer, "table"), args.records)
        table["max_rss_mb_so_far"] = _max_rss_mb()
        s3 = s3_part(officer, _accounts(officer, "s3"), args.blobs)
        s3["max_rss_mb_so_far"] = _max_rss_mb()
    out = {
        "benchmark": "legal_hold_sync",
        "what": "carrying legal holds to the blob store: table reconciliation and S3 calls",
        "database": connection.vendor,
        "table_local_backend": table,
        "s3_moto": s3,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    suffix = "" if connection.vendor == "sqlite" else f"_{connection.vendor}"
    path = ROOT / "bench" / "results" / f"{args.output or 'legal_hold_sync' + suffix}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
