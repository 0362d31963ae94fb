"""A real AT Protocol network for the Bluesky tests: the pinned ``@atproto/dev-env``
(``TestNetworkNoAppView``: an in-memory PLC and one PDS on SQLite), started once per session
by ``devenv/start-network.js``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DEVENV = Path(__file__).resolve().parent.parent / "devenv"
STARTUP_SECONDS = 120


@dataclass(frozen=True)
class LocalNetwork:
    pds_url: str
    plc_url: str
    firehose_url: str

    def config(self, **extra: Any) -> dict[str, Any]:
        return {
            "service_url": self.pds_url,
            "plc_url": self.plc_url,
            "firehose_idle_seconds": 0.5,
            "firehose_max_seconds": 5.0,
            **extra,
        }


def _node_missing() -> None:
    message = (
        "\n" + "!" * 78 + "\nBLUESKY TESTS SKIPPED: `node` is not installed, so the local AT "
        "Protocol network\n(@atproto/dev-env) cannot start. Install Node 18+ to run them.\n"
        + "!"
        * 78
    )
    if os.environ.get("CI"):
        pytest.fail("Node is required in CI for the Bluesky tests." + message, pytrace=False)
    sys.stderr.write(message + "\n")
    pytest.skip("node is not installed: the Bluesky reference-server tests cannot run")


def _install() -> None:
    if (DEVENV / "node_modules" / "@atproto" / "dev-env").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing: cannot install @atproto/dev-env", pytrace=False)
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=DEVENV, check=True
    )


@pytest.fixture(scope="session")
def bsky_network() -> Iterator[LocalNetwork]:
    node = shutil.which("node")
    if node is None:
        _node_missing()
    assert node is not None
    _install()
    process = subprocess.Popen(
        [node, "start-network.js"],
        cwd=DEVENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "LOG_ENABLED": ""},
    )
    assert process.stdout is not None and process.stdin is not None
    first: list[bytes] = []
    reader = threading.Thread(target=lambda: first.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(STARTUP_SECONDS)
    try:
        if not first or not first[0]:
            process.kill()
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            pytest.fail(f"the AT Protocol dev-env did not start:\n{err[-3000:]}", pytrace=False)
        info = json.loads(first[0])
        yield LocalNetwork(info["pds_url"], info["plc_url"], info["firehose_url"])
    finally:
        try:
            process.stdin.close()
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait(timeout=5)
