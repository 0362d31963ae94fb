"""The sandbox network end to end: publish through its connector, capture into the archive,
the simulator, and hostile input from the network."""

from __future__ import annotations

import random
from typing import Any

import pytest

from vetline.archive.models import ArchivedRecord, QuarantinedItem
from vetline.connectors import actions
from vetline.connectors.actions import _tokens_for
from vetline.connectors.base import Media, PublishRequest
from vetline.connectors.models import Connection
from vetline.connectors.sandbox import network as sandbox
from vetline.connectors.sandbox.connector import SandboxConnector
from vetline.connectors.sandbox.models import PostKind, SandboxAccount, SandboxPost
from vetline.connectors.sandbox.simulator import simulate
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db


def _tokens(account: Any) -> Any:
    return _tokens_for(Connection.objects.select_related("account").get(account=account))


def test_publish_capture_round_trip(world: Any, connected: Any) -> None:
    connector = SandboxConnector()
    tokens = _tokens(connected)
    result = connector.publish(
        tokens=tokens,
        request=PublishRequest(
            text="Our spring webinar is open.",
            media=(Media(b"\x89PNG...", "image/png", "poster"),),
        ),
    )
    assert result.remote_id.startswith("sbx-") and result.remote_id in result.url
    customer = sandbox.ensure_account("casey", display_name="Casey", customer=True)
    post = SandboxPost.objects.get(remote_id=result.remote_id)
    reply = sandbox.create_post(
        timeline=post.timeline, author=customer, text="Fees?", kind=PostKind.REPLY, in_reply_to=post
    )
    ours = connector.publish(
        tokens=tokens,
        request=PublishRequest(text="No fees.", reply_to_remote_id=reply.remote_id),
    )
    sandbox.create_post(
        timeline=post.timeline, author=customer, text="DM me", kind=PostKind.DIRECT_MESSAGE
    )
    sandbox.edit_post(post=post, text="Our spring webinar is open (edited).")
    connector.delete(tokens=tokens, remote_id=ours.remote_id)
    sandbox.update_profile(account=post.timeline, display_name="Acme", bio="Training")

    outcome = actions.capture_account(account_id=connected.pk)
    assert outcome.status == "captured" and outcome.quarantined == 0
    records = ArchivedRecord.objects.filter(account=connected)
    by_kind = {(r.kind, r.direction, r.version) for r in records}
    assert ("post", "outbound", 1) in by_kind
    assert ("reply", "inbound", 1) in by_kind
    assert ("reply", "outbound", 1) in by_kind
    assert ("direct_message", "inbound", 1) in by_kind
    assert ("edit", "outbound", 2) in by_kind
    assert ("deletion", "outbound", 2) in by_kind
    assert ("profile_snapshot", "outbound", 1) in by_kind
    original = records.get(remote_id=result.remote_id, version=1)
    assert original.network == "sandbox" and original.source == "api:sandbox"
    assert b'"type":"create"' in bytes(original.raw_payload)
    dm = records.get(kind="direct_message")
    assert dm.participants == ["acme-training", "casey"]
    # Nothing new: a second capture finds nothing and duplicates nothing.
    again = actions.capture_account(account_id=connected.pk)
    assert again.ingested == 0 and again.duplicates == 0
    profile = connector.fetch_profile(tokens=tokens, handle=connected.handle)
    assert profile.display_name == "Acme"
    assert connector.search(tokens=tokens, query="webinar")


def test_simulator_generates_customer_activity(world: Any, connected: Any) -> None:
    timeline = SandboxAccount.objects.get(handle=connected.handle)
    sandbox.create_post(timeline=timeline, author=timeline, text="hello")
    assert simulate(rng=random.Random(3), actions=20) > 0
    assert SandboxPost.objects.filter(author__is_customer=True).exists()
    outcome = actions.capture_account(account_id=connected.pk)
    assert outcome.ingested > 1
    assert ArchivedRecord.objects.filter(account=connected, direction="inbound").exists()


def test_hostile_input_is_kept_and_quarantined(world: Any, connected: Any, login: Any) -> None:
    timeline = SandboxAccount.objects.get(handle=connected.handle)
    attacker = sandbox.ensure_account(
        "evil",
        display_name='<script>alert("x")</script><img src=x onerror=alert(1)>',
        customer=True,
    )
    zero_width = "pay\u200bpal\u200d \ufeffrefund"
    sandbox.create_post(
        timeline=timeline, author=attacker, text=zero_width, kind=PostKind.DIRECT_MESSAGE
    )
    sandbox.update_profile(
        account=timeline, display_name="<b onmouseover=alert(2)>Acme</b>", bio="\u202eevil"
    )
    huge = sandbox.create_post(timeline=timeline, author=attacker, text="A" * (10 * 1024 * 1024))
    invalid_utf8 = b'{"type":"create","text":"\xff\xfe broken"}'
    sandbox.inject_raw_event(timeline=timeline, payload=invalid_utf8)
    sandbox.inject_raw_event(timeline=timeline, payload=b"[1, 2")

    outcome = actions.capture_account(account_id=connected.pk)
    assert outcome.status == "captured"
    # Zero-width characters are stored verbatim.
    dm = ArchivedRecord.objects.get(account=connected, kind="direct_message")
    assert dm.text == zero_width
    # HTML in display names is kept verbatim in the raw payload…
    assert b"<script>alert" in bytes(dm.raw_payload)
    # …and what cannot be normalised is quarantined with its bytes and a reason.
    reasons = dict(
        QuarantinedItem.objects.filter(account=connected).values_list("reason_code", "raw")
    )
    assert set(reasons) >= {"invalid_utf8", "invalid_json", "oversized"}
    assert bytes(reasons["invalid_utf8"]) == invalid_utf8
    assert bytes(reasons["invalid_json"]) == b"[1, 2"
    assert huge.remote_id.encode() in bytes(reasons["oversized"])
    # Pages render it escaped.
    client = login(world.people[Role.ADMINISTRATOR])
    page = client.get(f"/connectors/sandbox/{connected.pk}/").content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "<b onmouseover" not in page
    officer = login(world.people[Role.COMPLIANCE_OFFICER])
    record = ArchivedRecord.objects.get(account=connected, kind="profile_snapshot")
    body = officer.get(f"/archive/records/{record.pk}/").content.decode()
    assert "<b onmouseover" not in body


def test_tokens_of_another_account_are_refused(world: Any, connected: Any) -> None:
    from vetline.connectors.base import PermanentError

    with pytest.raises(PermanentError):
        SandboxConnector().fetch_activity(
            tokens=_tokens(connected), handle="someone-else", cursor=None
        )
