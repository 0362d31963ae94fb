"""A real AT Protocol network for the Bluesky tests: the pinned ``@atproto/dev-env``
(``TestNetworkNoAppView``: an in-memory PLC and one PDS on SQLite), started once per session
by ``devenv/start-network.js``: launched right after collection, so that Node's start overlaps
the creation of the test database."""

from __future__ import annotations

import itertools
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
from atproto import Client, models  # type: ignore[import-untyped]

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


class _Launch:
    """The dev-env process, started as soon as collection shows a Bluesky test will run, so its
    start (Node loading the packages: seconds) overlaps the test database's creation instead of
    following it. One network serves the whole session."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.first: list[bytes] = []
        self.reader: threading.Thread | None = None

    def start(self, *, install: bool = True) -> None:
        node = shutil.which("node")
        if self.process is not None or node is None:
            return
        if install:
            _install()
        elif not (DEVENV / "node_modules" / "@atproto" / "dev-env").is_dir():
            return  # installed (or reported) by the fixture, in a test

        self.process = subprocess.Popen(
            [node, "start-network.js"],
            cwd=DEVENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "LOG_ENABLED": ""},
        )
        stdout = self.process.stdout
        assert stdout is not None
        self.reader = threading.Thread(
            target=lambda: self.first.append(stdout.readline()), daemon=True
        )
        self.reader.start()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        try:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait(timeout=5)


_LAUNCH = _Launch()


def pytest_collection_finish(session: pytest.Session) -> None:
    if any(Path(str(item.path)).is_relative_to(Path(__file__).parent) for item in session.items):
        _LAUNCH.start(install=False)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _LAUNCH.stop()


@pytest.fixture(scope="session")
def bsky_network() -> Iterator[LocalNetwork]:
    if shutil.which("node") is None:
        _node_missing()
    _LAUNCH.start()  # (already started after collection, normally)
    process, reader = _LAUNCH.process, _LAUNCH.reader
    assert process is not None and reader is not None
    reader.join(STARTUP_SECONDS)
    try:
        if not _LAUNCH.first or not _LAUNCH.first[0]:
            process.kill()
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            pytest.fail(f"the AT Protocol dev-env did not start:\n{err[-3000:]}", pytrace=False)
        info = json.loads(_LAUNCH.first[0])
        yield LocalNetwork(info["pds_url"], info["plc_url"], info["firehose_url"])
    finally:
        _LAUNCH.stop()


# --- An account on the local network, connected in Vetline --------------------------------------

_counter = itertools.count()


def new_remote_account(net: LocalNetwork, name: str) -> tuple[str, str, str]:
    """An account on the PDS and an app password for it: (handle, did, app password)."""
    handle = f"{name}{next(_counter)}-{id(net) % 10_000}.test"
    client = Client(base_url=net.pds_url)
    created = client.com.atproto.server.create_account(
        models.ComAtprotoServerCreateAccount.Data(
            handle=handle, email=f"{handle}@example.com", password="main-password-1234"
        )
    )
    # The new account's own session authorises the app password (no second password check).
    app = client.com.atproto.server.create_app_password(
        models.ComAtprotoServerCreateAppPassword.Data(name="vetline"),
        headers={"Authorization": f"Bearer {created.access_jwt}"},
    )
    return handle, created.did, app.password


@pytest.fixture
def connector(bsky_network: LocalNetwork) -> Any:
    from vetline.connectors.bluesky.connector import BlueskyConnector

    return BlueskyConnector(config=bsky_network.config())


@pytest.fixture
def bsky_account(world: Any, bsky_network: LocalNetwork, connector: Any) -> Any:
    """A corporate Bluesky account, connected by the administrator with an app password."""
    from vetline.accounts.models import AccountKind, Network, SocialAccount
    from vetline.connectors import actions
    from vetline.identity.roles import Role

    handle, did, app_password = new_remote_account(bsky_network, "acme")
    account = SocialAccount.objects.create(
        network=Network.BLUESKY,
        handle=handle,
        kind=AccountKind.CORPORATE,
        owner=world.people[Role.COMPLIANCE_OFFICER],
    )
    actions.connect_with_app_password(
        actor=world.people[Role.ADMINISTRATOR],
        account=account,
        identifier=handle,
        app_password=app_password,
        connector=connector,
    )
    account.refresh_from_db()
    setattr(account, "remote_did", did)  # noqa: B010 (read by the tests)
    return account
