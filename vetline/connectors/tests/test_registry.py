"""Plugin discovery through entry points: a third party's connector is found without touching
Vetline's code."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from vetline.connectors.registry import ENTRY_POINT_GROUP, connector_for, discover, installed

PLUGIN = """
from vetline.connectors.base import Capabilities, Connector, Unsupported


class ExampleConnector(Connector):
    network = "example"
    label = "Example network"
    capabilities = Capabilities(publish_post=True, capture_own_posts=True, oauth2=True)

    def authorization_url(self, *, redirect_uri, state, code_challenge, handle):
        return "https://example.test/authorize?state=" + state

    def exchange_code(self, *, code, redirect_uri, code_verifier):
        raise Unsupported("x")

    def publish(self, *, tokens, request):
        raise Unsupported("x")

    def delete(self, *, tokens, remote_id):
        raise Unsupported("x")

    def fetch_activity(self, *, tokens, handle, cursor, limit=100):
        raise Unsupported("x")

    def fetch_profile(self, *, tokens, handle):
        raise Unsupported("x")
"""


def _install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, entry: str, code: str
) -> None:
    """A distribution installed on sys.path: a module and a dist-info with entry points."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(code))
    info = tmp_path / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    importlib.invalidate_caches()


def test_builtin_sandbox_is_discovered() -> None:
    found = installed()
    assert "sandbox" in found
    assert found["sandbox"].distribution == "vetline"
    assert found["sandbox"].cls.training_only


def test_third_party_connector_is_discovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(
        tmp_path,
        monkeypatch,
        "vetline_example_plugin",
        "example = vetline_example_plugin:ExampleConnector",
        PLUGIN,
    )
    found, broken = discover()
    assert not [b for b in broken if b.name == "example"]
    plugin = found["example"]
    assert plugin.distribution == "vetline_example_plugin"
    assert plugin.describe()["capabilities"]["publish_post"] is True
    connector: Any = connector_for("example", config={"example": {"client_id": "abc"}})
    assert connector.config == {"client_id": "abc"}
    assert connector.authorization_url(
        redirect_uri="r", state="s", code_challenge="c", handle="h"
    ).endswith("state=s")
    sys.modules.pop("vetline_example_plugin", None)


def test_broken_plugins_are_reported_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(
        tmp_path,
        monkeypatch,
        "vetline_broken_plugin",
        "broken = vetline_broken_plugin:Missing\nwrongname = vetline_broken_plugin:NotAConnector",
        "class NotAConnector:\n    pass\n",
    )
    found, broken = discover()
    assert "sandbox" in found
    assert {b.name for b in broken} >= {"broken", "wrongname"}
    sys.modules.pop("vetline_broken_plugin", None)


def test_the_api_lists_installed_networks(world: Any, login: Any) -> None:
    from vetline.identity.roles import Role

    client = login(world.people[Role.EMPLOYEE])
    data = client.get("/api/connectors/networks").json()
    sandbox = next(n for n in data if n["network"] == "sandbox")
    assert sandbox["training_only"] is True and sandbox["capabilities"]["delete"] is True
