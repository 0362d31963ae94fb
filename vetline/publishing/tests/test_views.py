"""Pages and API of publishing: compose with live screening, review with diff and highlights,
one-click decisions, and four-eyes and scoping through the UI, the API and the admin."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from vetline.identity.roles import Role
from vetline.publishing import actions, approvals
from vetline.publishing.models import Approval, ApprovalRequest, Draft
from vetline.publishing.tests.conftest import draft_input, stuck_publication

pytestmark = pytest.mark.django_db


def _submitted(pw: Any, text: str = "Webinar on Thursday.") -> tuple[Draft, ApprovalRequest]:
    draft = actions.create_draft(actor=pw.publisher, data=draft_input(pw.account, text))
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    return draft, ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}", state="pending")


def _make_author_an_approver(pw: Any) -> None:
    from vetline.accounts.models import Assignment
    from vetline.identity.models import RoleGrant

    RoleGrant.objects.create(person=pw.publisher, role=Role.APPROVER.value)
    Assignment.objects.create(account=pw.account, person=pw.publisher, capability="approve")
    pw.publisher.forget_roles()


def test_compose_screens_live_and_saves(pw: Any, client: Any) -> None:
    client.force_login(pw.publisher)
    page = client.get("/publishing/compose/")
    assert page.status_code == 200
    assert str(pw.account) in page.content.decode()
    assert str(pw.world.other) not in page.content.decode()  # not authorized there
    live = client.post(
        "/publishing/screen/", {"text": "Guaranteed returns for all!"}, HTTP_HX_REQUEST="true"
    )
    html = live.content.decode()
    assert live.status_code == 200
    assert '<mark class="sev-block">Guaranteed returns</mark>' in html
    assert "promise.returns" in html
    r = client.post(
        "/publishing/compose/",
        {"text": "Guaranteed returns for all!", "accounts": [pw.account.pk]},
    )
    assert r.status_code == 302
    draft = Draft.objects.get(author=pw.publisher)
    page = client.get(f"/publishing/drafts/{draft.pk}/").content.decode()
    assert "sev-block" in page and "disabled" in page  # submit is disabled while blocked
    r = client.post(f"/publishing/drafts/{draft.pk}/submit/", follow=True)
    assert "Screening blocks this text" in r.content.decode()
    # Bad input is a clear error on the form, not a 500.
    bad = client.post(
        "/publishing/compose/",
        {"text": "x", "accounts": [pw.account.pk], "scheduled_for": "yesterday-ish"},
    )
    assert bad.status_code == 422 and "ISO 8601" in bad.content.decode()
    unsupported = client.post(
        "/publishing/compose/",
        {
            "text": "x",
            "accounts": [pw.account.pk],
            "attachments": [_upload("report.pdf", b"%PDF-1.4 not an image")],
        },
    )
    assert unsupported.status_code == 422
    assert "not a supported image" in unsupported.content.decode()


def _upload(name: str, content: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def test_review_page_shows_diff_highlights_and_override(pw: Any, client: Any) -> None:
    draft = actions.create_draft(
        actor=pw.publisher, data=draft_input(pw.account, "Guaranteed returns, hurricane sale")
    )
    actions.save_draft(
        actor=pw.publisher,
        draft_id=draft.pk,
        data=draft_input(pw.account, "Guaranteed returns, storm sale"),
    )
    rev = draft.latest_revision
    assert rev is not None
    actions.override_block(
        actor=pw.officer, revision_id=rev.pk, reason="Quoting the regulator verbatim here."
    )
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}", state="pending")
    client.force_login(pw.approver)
    inbox = client.get("/publishing/inbox/").content.decode()
    assert req.title in inbox
    page = client.get(f"/publishing/reviews/{req.pk}/").content.decode()
    assert "Quoting the regulator verbatim here." in page  # the override is shown
    assert '<mark class="sev-block">' in page
    assert '<del class="d-del"' in page and "hurricane" in page
    assert '<ins class="d-add"' in page and "storm" in page
    assert req.subject_sha256 in page


def test_one_click_decisions_through_the_page(pw: Any, client: Any) -> None:
    draft, req = _submitted(pw)
    client.force_login(pw.approver)
    r = client.post(
        f"/publishing/reviews/{req.pk}/decide/",
        {"decision": "approve", "subject_sha256": req.subject_sha256, "step_position": 1},
    )
    assert r.status_code == 302
    client.force_login(pw.approver2)
    r = client.post(
        f"/publishing/reviews/{req.pk}/decide/",
        {"decision": "reject", "subject_sha256": req.subject_sha256, "step_position": 2},
    )
    assert r.status_code == 422 and "needs to know" in r.content.decode()
    r = client.post(
        f"/publishing/reviews/{req.pk}/decide/",
        {
            "decision": "reject",
            "comment": "Needs a disclaimer",
            "subject_sha256": req.subject_sha256,
            "step_position": 2,
        },
    )
    assert r.status_code == 302
    draft.refresh_from_db()
    assert draft.state == "rejected"
    client.force_login(pw.publisher)
    page = client.get(f"/publishing/drafts/{draft.pk}/").content.decode()
    assert "Needs a disclaimer" in page  # the history timeline


def test_four_eyes_through_the_ui(pw: Any, client: Any, make_person: Any) -> None:
    _make_author_an_approver(pw)
    _, req = _submitted(pw)
    client.force_login(pw.publisher)
    r = client.post(
        f"/publishing/reviews/{req.pk}/decide/",
        {"decision": "approve", "subject_sha256": req.subject_sha256},
    )
    assert r.status_code == 403
    stranger = make_person(Role.APPROVER, "stranger@example.com")
    client.force_login(stranger)
    assert client.get(f"/publishing/reviews/{req.pk}/").status_code == 404
    r = client.post(
        f"/publishing/reviews/{req.pk}/decide/",
        {"decision": "approve", "subject_sha256": req.subject_sha256},
    )
    assert r.status_code == 404
    assert not Approval.objects.exists()


def test_four_eyes_and_scoping_through_the_api(pw: Any, api: Any, make_person: Any) -> None:
    _make_author_an_approver(pw)
    _, req = _submitted(pw)
    body = {"decision": "approve", "subject_sha256": req.subject_sha256}
    r = api(pw.publisher)("POST", f"/api/publishing/approvals/{req.pk}/decide", body)
    assert r.status_code == 403 and "Authors never approve" in r.content.decode()
    stranger = make_person(Role.APPROVER, "stranger@example.com")
    r = api(stranger)("POST", f"/api/publishing/approvals/{req.pk}/decide", body)
    assert r.status_code == 404
    ok = api(pw.approver2)("POST", f"/api/publishing/approvals/{req.pk}/decide", body)
    assert ok.status_code == 200 and ok.json()["current_position"] == 2
    again = api(pw.approver2)("POST", f"/api/publishing/approvals/{req.pk}/decide", body)
    assert again.status_code == 403  # one person, one step
    stale = api(pw.approver)(
        "POST", f"/api/publishing/approvals/{req.pk}/decide", {**body, "subject_sha256": "0" * 64}
    )
    assert stale.status_code == 409
    assert Approval.objects.count() == 1


def test_four_eyes_through_the_admin(pw: Any, client: Any, make_person: Any) -> None:
    superuser = make_person(None, "root@example.com")
    superuser.is_staff = superuser.is_superuser = True
    superuser.save()
    _, req = _submitted(pw)
    client.force_login(superuser)
    assert client.get("/admin/publishing/approval/").status_code == 200
    assert client.get("/admin/publishing/approval/add/").status_code == 403
    r = client.post(
        "/admin/publishing/approval/add/",
        {
            "request": req.pk,
            "step": req.steps.first().pk,  # type: ignore[union-attr]
            "approver": pw.publisher.pk,
            "author": pw.publisher.pk,
            "decision": "approve",
            "subject_sha256": req.subject_sha256,
        },
    )
    assert r.status_code == 403
    change = client.post(
        f"/admin/publishing/approvalrequest/{req.pk}/change/", {"state": "approved"}
    )
    assert change.status_code == 403
    req.refresh_from_db()
    assert req.state == "pending" and not Approval.objects.exists()


def test_api_drafting_flow_and_bad_input(pw: Any, api: Any) -> None:
    call = api(pw.publisher)
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()
    r = call(
        "POST",
        "/api/publishing/drafts",
        {
            "text": "Hello from the API",
            "account_ids": [pw.account.pk],
            "media": [{"content_b64": png, "alt_text": "logo"}],
        },
    )
    assert r.status_code == 201, r.content
    draft = r.json()
    assert draft["latest"]["media"][0]["mime_type"] == "image/png"
    for payload, status in (
        ({"text": "x", "account_ids": [pw.world.other.pk]}, 422),
        ({"text": "x", "account_ids": [pw.account.pk], "scheduled_for": "soon"}, 422),
        ({"text": "x", "account_ids": [pw.account.pk], "media": [{"content_b64": "!!"}]}, 422),
        ({"text": "x" * 501, "account_ids": [pw.account.pk]}, 422),
        ({"text": "x", "account_ids": []}, 422),
    ):
        assert call("POST", "/api/publishing/drafts", payload).status_code == status, payload
    put = call(
        "PUT",
        f"/api/publishing/drafts/{draft['id']}",
        {"text": "Hello again from the API", "account_ids": [pw.account.pk]},
    )
    assert put.status_code == 200 and put.json()["latest"]["number"] == 2
    assert put.json()["latest"]["media"], "attachments are kept when none are sent"
    diff = call("GET", f"/api/publishing/drafts/{draft['id']}/diff").json()
    assert ["add", " again"] in diff["pieces"]
    sub = call("POST", f"/api/publishing/drafts/{draft['id']}/submit", {})
    assert sub.status_code == 200 and sub.json()["state"] == "in_review"
    inbox = api(pw.approver)("GET", "/api/publishing/approvals").json()
    assert [r["id"] for r in inbox] == [sub.json()["request_id"]]
    history = call("GET", f"/api/publishing/drafts/{draft['id']}/history").json()
    assert [e["kind"] for e in history][:3] == ["revision", "revision", "submitted"]


def test_calendar_and_queue_pages(pw: Any, client: Any) -> None:
    when = timezone.now() + dt.timedelta(days=1)
    draft = actions.create_draft(
        actor=pw.publisher,
        data=draft_input(pw.account, "Tomorrow's post", scheduled_for=when.isoformat()),
    )
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}")
    for who in (pw.approver, pw.approver2):
        approvals.decide(
            actor=who, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
        )
    client.force_login(pw.publisher)
    cal = client.get("/publishing/calendar/").content.decode()
    assert "Tomorrow&#x27;s post" in cal or "Tomorrow's post" in cal
    queue = client.get("/publishing/?state=scheduled").content.decode()
    assert f"#{draft.pk}" in queue


def test_chains_and_groups_through_the_page(pw: Any, client: Any) -> None:
    from vetline.publishing.models import AccountGroup

    client.force_login(pw.officer)
    r = client.post(
        "/publishing/chains/",
        {"form": "group", "group-name": "Brand", "group-members": [pw.world.corporate.pk]},
    )
    assert r.status_code == 302
    group = AccountGroup.objects.get(name="Brand")
    r = client.post(
        "/publishing/chains/",
        {
            "name": "Brand posts",
            "subject_kind": "post",
            "group": group.pk,
            "requires_approval": "on",
            "approval_valid_hours": 24,
            "steps": f"Principal | 1 | approver\nLegal | 1 | {pw.officer.email}",
        },
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    plan = approvals.resolve_chain(kind="post", accounts=[pw.world.corporate])
    assert [s.name for s in plan.steps] == ["Principal", "Legal"]
    assert plan.steps[1].approver_ids == (pw.officer.pk,)
    bad = client.post(
        "/publishing/chains/",
        {"name": "x", "subject_kind": "post", "approval_valid_hours": 24, "steps": "nonsense"},
    )
    assert bad.status_code == 422 and "name | approvals" in bad.content.decode()
    page = client.get("/publishing/chains/").content.decode()
    assert "Brand posts" in page and "Legal" in page


# --- Settling by hand a publication whose fate is unknown --------------------------------------


def test_settle_through_the_pages(pw: Any, client: Any, monkeypatch: Any) -> None:
    from vetline.connectors.models import Alert
    from vetline.connectors.sandbox.models import SandboxPost
    from vetline.publishing.models import Publication

    pub = stuck_publication(pw, monkeypatch, "Was it sent?", sent=True)
    post = SandboxPost.objects.get(text="Was it sent?")
    # The alert points to the list of publications awaiting settlement.
    alert = Alert.objects.get(code=f"publish_unknown:{pub.pk}")
    assert alert.link == "/publishing/unsettled/"
    # Someone who sees the draft but may not settle sees it listed, without the form.
    client.force_login(pw.publisher)
    page = client.get("/publishing/unsettled/").content.decode()
    assert "Was it sent?" in page and 'data-testid="settle"' not in page
    assert "A compliance officer settles it." in page
    client.force_login(pw.officer)
    page = client.get("/publishing/unsettled/").content.decode()
    assert 'data-testid="unsettled"' in page and 'data-testid="settle"' in page
    draft_page = client.get(f"/publishing/drafts/{pub.draft_id}/").content.decode()
    assert "Fate unknown" in draft_page and f"/publications/{pub.pk}/settle/" in draft_page
    # Incomplete: a clear error, nothing changes.
    r = client.post(
        f"/publishing/publications/{pub.pk}/settle/",
        {"outcome": "published", "reason": "Seen on the timeline.", "back": "list"},
        follow=True,
    )
    assert r.status_code == 200 and "id on the network" in r.content.decode()
    assert Publication.objects.get(pk=pub.pk).state == "sending"
    r = client.post(
        f"/publishing/publications/{pub.pk}/settle/",
        {"outcome": "maybe", "reason": "Seen on the timeline."},
        follow=True,
    )
    assert r.status_code == 200 and Publication.objects.get(pk=pub.pk).state == "sending"
    r = client.post(
        f"/publishing/publications/{pub.pk}/settle/",
        {"outcome": "published", "remote_id": post.remote_id, "reason": "Seen on the timeline."},
    )
    assert r.status_code == 302 and r["Location"] == f"/publishing/drafts/{pub.draft_id}/"
    pub.refresh_from_db()
    assert pub.state == "published" and pub.remote_id == post.remote_id
    assert "Was it sent?" not in client.get("/publishing/unsettled/").content.decode()
    # Settling again is refused with a message, not an error page.
    r = client.post(
        f"/publishing/publications/{pub.pk}/settle/",
        {"outcome": "not_published", "reason": "Changed my mind."},
        follow=True,
    )
    assert r.status_code == 200 and "only one whose sending was interrupted" in (r.content.decode())
    # Not allowed: 403; not visible / missing: 404.
    client.force_login(pw.publisher)
    r = client.post(
        f"/publishing/publications/{pub.pk}/settle/",
        {"outcome": "not_published", "reason": "Not there."},
    )
    assert r.status_code == 403
    client.force_login(pw.officer)
    r = client.post(
        "/publishing/publications/999999999/settle/",
        {"outcome": "not_published", "reason": "Not there."},
    )
    assert r.status_code == 404


def test_settle_through_the_api(pw: Any, api: Any, monkeypatch: Any) -> None:
    pub = stuck_publication(pw, monkeypatch, "Unknown through the API", sent=False)
    path = f"/api/publishing/publications/{pub.pk}/settle"
    body = {"outcome": "not_published", "reason": "Looked at the account: not there."}
    assert api(pw.publisher)("POST", path, body).status_code == 403
    assert api(pw.admin)("POST", path, body).status_code == 403
    officer = api(pw.officer)
    listed = officer("GET", "/api/publishing/unsettled").json()
    assert [p["id"] for p in listed["items"]] == [pub.pk]
    assert (
        api(pw.world.people[Role.EMPLOYEE])("GET", "/api/publishing/unsettled").json()["items"]
        == []
    )  # filtered to the drafts one sees
    for bad in (
        {**body, "outcome": "maybe"},
        {**body, "reason": ""},
        {**body, "reason": "x" * 2001},
        {**body, "remote_id": "x" * 301},
        {"outcome": "published", "reason": "Seen it."},  # no network id
        {**body, "url": "https://x.test/" + "y" * 1000},
    ):
        r = officer("POST", path, bad)
        assert r.status_code == 422, (bad, r.status_code)
    assert officer("POST", "/api/publishing/publications/999999999/settle", body).status_code == 404
    r = officer("POST", path, body)
    assert r.status_code == 200, r.content
    assert r.json()["state"] == "failed"
    again = officer("POST", path, body)
    assert again.status_code == 409 and again.json()["code"] == "not_settleable"
    assert officer("GET", "/api/publishing/unsettled").json()["items"] == []
