"""Capture latency of streaming (``vetline stream``) against scheduled capture, on the real AT
Protocol reference server (the pinned @atproto/dev-env the Bluesky tests use).

For each post published to the account's PDS: the seconds from ``createRecord`` returning to
the post being in the archive (its ``ArchivedRecord`` row readable from another connection).

* ``stream``: the stream supervisor's loop for the account runs in a thread, firehose open;
  nothing else captures.
* ``scheduled_best_case`` (the baseline): no stream; a scheduled capture
  (``capture_account``: a bounded firehose session from the stored cursor) starts the instant
  the post is published, which is the best a schedule can do. A real schedule adds the wait
  for its next run: on average half of ``VETLINE_CAPTURE_INTERVAL_MINUTES`` (30 s at the
  default 1 minute), reported as ``scheduled_expected``.

The two alternate in rounds (stream first in even rounds), on the same account and network.

    python bench/stream_latency_bench.py [--posts 20] [--rounds 2] [--database-url URL]

Needs ``node`` and the dev-env installed (``make node-deps``). Writes
bench/results/stream_latency[_postgresql].json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).absolute().parents[1]
sys.path.insert(0, str(ROOT))
from bench.archive_search_bench import _pct, _pg_database  # noqa: E402

DEVENV = ROOT / "vetline" / "connectors" / "bluesky" / "devenv"


def _setup(data_dir: str, database_url: str) -> None:
    os.environ["VETLINE_DATA_DIR"] = data_dir
    os.environ["VETLINE_ENV"] = "test"
    os.environ.pop("REDIS_URL", None)
    if database_url:
        _pg_database(database_url)
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{data_dir}/bench.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "vetline.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _network() -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    node = shutil.which("node")
    if node is None or not (DEVENV / "node_modules" / "@atproto" / "dev-env").is_dir():
        raise SystemExit("node and the dev-env are needed: run `make node-deps`")
    process = subprocess.Popen(
        [node, "start-network.js"],
        cwd=DEVENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "LOG_ENABLED": ""},
    )
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


def _account(info: dict[str, str]) -> tuple[Any, Any]:
    from vetline.accounts.models import AccountKind, Network, SocialAccount
    from vetline.connectors import actions
    from vetline.connectors.bluesky.connector import BlueskyConnector
    from vetline.connectors.bluesky.tests.conftest import LocalNetwork, new_remote_account
    from vetline.identity.models import Person, RoleGrant
    from vetline.identity.roles import Role

    net = LocalNetwork(info["pds_url"], info["plc_url"], info["firehose_url"])
    connector = BlueskyConnector(config=net.config())
    admin = Person.objects.create_user(
        email=f"bench-{time.time_ns()}@example.com", password="x" * 16, full_name="Admin"
    )
    RoleGrant.objects.create(person=admin, role=Role.ADMINISTRATOR.value)
    handle, _did, app_password = new_remote_account(net, "bench")
    account = SocialAccount.objects.create(
        network=Network.BLUESKY, handle=handle, kind=AccountKind.CORPORATE, owner=admin
    )
    actions.connect_with_app_password(
        actor=admin,
        account=account,
        identifier=handle,
        app_password=app_password,
        connector=connector,
    )
    return account, connector


def _arrived(account: Any, remote_id: str, *, timeout: float = 30.0) -> float:
    from vetline.archive.models import ArchivedRecord

    started = time.monotonic()
    while not ArchivedRecord.objects.filter(account=account, remote_id=remote_id).exists():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{remote_id} did not arrive in {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=20, help="posts per round and mode")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="vetline-stream-bench-")
    _setup(data_dir, args.database_url)
    process, info = _network()
    try:
        from vetline.connectors import actions
        from vetline.connectors.actions import _tokens_for
        from vetline.connectors.base import PublishRequest
        from vetline.connectors.models import Connection
        from vetline.connectors.stream import AccountStream, StreamSettings

        account, connector = _account(info)
        tokens = _tokens_for(Connection.objects.select_related("account").get(account=account))
        actions.capture_account(account_id=account.pk, connector=connector)  # backfill
        samples: dict[str, list[float]] = {"stream": [], "scheduled_best_case": []}

        def stream_round() -> None:
            stream = AccountStream(
                account.pk,
                settings=StreamSettings(heartbeat_seconds=5.0),
                connector_factory=lambda network: connector,
            )
            thread = threading.Thread(target=stream.run, daemon=True)
            thread.start()
            while stream.stats.heartbeats == 0:
                time.sleep(0.05)
            for i in range(args.posts):
                post = connector.publish(tokens=tokens, request=PublishRequest(text=f"S {i}"))
                samples["stream"].append(_arrived(account, post.remote_id))
            stream.stop_event.set()
            thread.join(15)

        def scheduled_round() -> None:
            for i in range(args.posts):
                post = connector.publish(tokens=tokens, request=PublishRequest(text=f"C {i}"))
                started = time.monotonic()
                actions.capture_account(account_id=account.pk, connector=connector)
                samples["scheduled_best_case"].append(
                    time.monotonic() - started + _arrived(account, post.remote_id, timeout=0.0)
                )

        for r in range(args.rounds):
            for run in (stream_round, scheduled_round)[:: 1 if r % 2 == 0 else -1]:
                run()
    finally:
        process.kill()
        process.wait(10)

    from django.conf import settings
    from django.db import connection

    interval = settings.VETLINE_CAPTURE_INTERVAL_MINUTES * 60
    best = samples["scheduled_best_case"]
    result: dict[str, Any] = {
        "benchmark": "stream_latency",
        "database": connection.vendor,
        "python": platform.python_version(),
        "posts_per_mode": len(samples["stream"]),
        "unit": "seconds from createRecord returning to the post being archived",
        "modes": {
            name: {
                "p50": round(_pct(values, 50), 3),
                "p95": round(_pct(values, 95), 3),
                "mean": round(statistics.fmean(values), 3),
                "max": round(max(values), 3),
            }
            for name, values in samples.items()
        },
        "scheduled_expected": {
            "capture_interval_seconds": interval,
            "mean": round(interval / 2 + statistics.fmean(best), 3),
            "max": round(interval + max(best), 3),
        },
    }
    name = "stream_latency" + ("_postgresql" if connection.vendor == "postgresql" else "")
    out = ROOT / "bench" / "results" / f"{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
