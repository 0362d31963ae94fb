"""SIGKILL the ingesting process at random moments, many times; then no acknowledged item is
missing, nothing is duplicated, and the log verifies."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHECK = """
import json, os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vetline.settings")
django.setup()
from django.db.models import Count
from vetline.archive.models import ArchivedRecord
from vetline.archive.verification import verify_database
ids = list(ArchivedRecord.objects.values_list("remote_id", flat=True))
dupes = list(ArchivedRecord.objects.values("remote_id", "version").annotate(n=Count("id"))
             .filter(n__gt=1).values_list("remote_id", flat=True))
result = verify_database()
print(json.dumps({"ids": ids, "dupes": dupes, "ok": result.ok, "lines": result.lines()}))
"""
SETUP = """
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vetline.settings")
django.setup()
from vetline.accounts.models import SocialAccount
from vetline.identity.models import Person
owner = Person.objects.create_user(email="crash@example.com", password="x" * 16, full_name="C")
SocialAccount.objects.create(network="x", handle="@crash", kind="corporate", owner=owner)
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        VETLINE_ENV="test",
        VETLINE_DATA_DIR=str(tmp_path / "data"),
        VETLINE_WITNESS_DIR=str(tmp_path / "witness"),
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_item(tmp_path: Path) -> None:
    env = _env(tmp_path)
    run: Any = subprocess.run
    run([sys.executable, "-m", "vetline.cli", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)
    run([sys.executable, "-c", SETUP], env=env, check=True, cwd=ROOT)
    rng = random.Random(4)
    acknowledged: set[str] = set()
    for attempt in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-m", "vetline.archive.tests.crash_worker", str(attempt)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        chunks: list[bytes] = []
        first_ack = threading.Event()
        assert proc.stdout is not None

        def drain(
            stream: Any = proc.stdout, chunks: list[bytes] = chunks, ack: Any = first_ack
        ) -> None:
            # Drain the pipe so the worker never blocks on a full one; note the first ack.
            for line in iter(stream.readline, b""):
                chunks.append(line)
                if line.startswith(b"ACK "):
                    ack.set()

        reader = threading.Thread(target=drain)
        reader.start()
        # Start-up time varies with the machine's load (and a cold bytecode cache), so the
        # random kill moment is measured from the first acknowledged batch, not from launch.
        assert first_ack.wait(timeout=120), "the worker never acknowledged a batch"
        time.sleep(rng.uniform(0.05, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        reader.join(timeout=30)
        out = b"".join(chunks).decode()
        complete = out[: out.rfind("\n") + 1]  # a line cut by the kill is not an acknowledgement
        acknowledged |= {ln[4:] for ln in complete.splitlines() if ln.startswith("ACK ")}
    assert len(acknowledged) > 100  # the runs did ingest before being killed
    done = run([sys.executable, "-c", CHECK], env=env, cwd=ROOT, capture_output=True, check=True)
    state = json.loads(done.stdout.decode().splitlines()[-1])
    archived = set(state["ids"])
    assert acknowledged <= archived, sorted(acknowledged - archived)[:10]
    assert state["dupes"] == []
    assert len(state["ids"]) == len(archived)
    assert state["ok"], state["lines"]
