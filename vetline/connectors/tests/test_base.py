from __future__ import annotations

import datetime as dt

import pytest

from vetline.connectors.base import (
    CAPABILITY_LABELS,
    Capabilities,
    Connector,
    Profile,
    TokenSet,
    new_pkce_pair,
    profile_item,
)
from vetline.connectors.sandbox.connector import SandboxConnector


def test_capabilities_are_declared_and_labelled() -> None:
    caps = SandboxConnector.capabilities.as_dict()
    assert set(CAPABILITY_LABELS) <= set(caps)
    assert caps["publish_post"] and caps["capture_direct_messages"] and caps["capture_edits"]
    assert caps["capture_mentions"] is False  # declared honestly: the sandbox has no mentions
    assert caps["streaming"] is False
    assert SandboxConnector.capabilities.can_capture
    assert not Capabilities().can_capture


def test_connector_is_abstract() -> None:
    with pytest.raises(TypeError):
        Connector()  # type: ignore[abstract]


def test_token_set_repr_hides_secrets() -> None:
    tokens = TokenSet(access_token="AT-very-secret-123", refresh_token="RT-very-secret-456")
    assert "secret" not in repr(tokens)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert TokenSet("a", expires_at=now).expired(now)
    assert not TokenSet("a", expires_at=now + dt.timedelta(hours=1)).expired(now)
    assert not TokenSet("a").expired(now)


def test_pkce_pair_is_s256() -> None:
    import base64
    import hashlib

    verifier, challenge = new_pkce_pair()
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge == expected.decode()


def test_profile_item_changes_id_with_content() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    a = profile_item(Profile(handle="h", display_name="A"), captured_at=now)
    b = profile_item(Profile(handle="h", display_name="B"), captured_at=now)
    assert a["remote_id"] != b["remote_id"] and a["kind"] == "profile_snapshot"


def test_scopes_cover_their_sub_scopes() -> None:
    from vetline.connectors.base import scope_granted

    assert scope_granted("read:statuses", ("read", "write"))
    assert scope_granted("write", ("write",))
    assert not scope_granted("read", ("read:statuses",))  # a sub-scope does not cover its parent
    assert not scope_granted("readstatuses", ("read",))
    assert not scope_granted("dm.read", ("tweet.read",))


def test_report_from_scopes_narrows_the_declared_capabilities() -> None:
    from vetline.connectors.base import report_from_scopes

    caps = Capabilities(publish_post=True, capture_own_posts=True, capture_direct_messages=True)
    needs = {"publish_post": ("write",), "capture_direct_messages": ("dm.read", "read")}
    allowed, missing = report_from_scopes(caps, needs, ("read", "write"))
    assert allowed == ["publish_post", "capture_own_posts"]
    assert missing == {"capture_direct_messages": "scope not granted: dm.read"}
    # Capabilities the network never offers are in neither list.
    assert "search" not in allowed and "search" not in missing
    # A network that reports no scopes cannot be narrowed by them.
    assert report_from_scopes(caps, needs, ())[1] == {}


def test_default_probe_and_configured_scopes() -> None:
    class Narrow(SandboxConnector):
        scope_requirements = {"search": ("search:all",)}

    connector = Narrow(config={"scopes": ["read"]})
    assert connector.scopes() == ("read",)
    assert SandboxConnector().scopes() == SandboxConnector.default_scopes
    report = connector.probe(tokens=TokenSet(access_token="t", scopes=("read", "write")))
    assert report.missing == {"search": "scope not granted: search:all"}
    assert "publish_post" in report.allowed
    assert report.as_dict()["missing"] == {"search": "scope not granted: search:all"}


def test_account_ref_bare_handle() -> None:
    from vetline.connectors.base import AccountRef

    assert AccountRef(handle=" @acme@mastodon.example").bare_handle == "acme@mastodon.example"
