"""The demo organisation's publishing: every state a visitor should see, made by the actions."""

from __future__ import annotations

import pytest

from vetline.publishing.models import Draft, Publication, RoguePost

pytestmark = pytest.mark.django_db


def test_demo_shows_the_line_of_authority(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    from vetline.core.demo import load_demo

    with django_capture_on_commit_callbacks(execute=True):
        load_demo()
    states = set(Draft.objects.values_list("state", flat=True))
    assert {"published", "scheduled", "in_review", "rejected", "editing"} <= states
    published = Publication.objects.get(state="published")
    assert published.approval_record_id is not None and published.archived_record_id is not None
    assert published.request is not None and published.request.approvals.count() == 2
    assert Publication.objects.filter(state="queued").count() == 1
    rogue = RoguePost.objects.get()
    assert "traffic" in rogue.text
    # The sandbox's history from before the connection is not an alarm.
    assert RoguePost.objects.count() == 1
    before = Draft.objects.count()
    load_demo()
    assert Draft.objects.count() == before


def test_every_publishing_page_renders_for_the_demo_people(client) -> None:  # type: ignore[no-untyped-def]
    from vetline.core.demo import load_demo
    from vetline.identity.models import Person
    from vetline.publishing.models import ApprovalRequest, Freeze

    load_demo()
    draft_ids = list(Draft.objects.values_list("pk", flat=True))
    req = ApprovalRequest.objects.filter(state="pending").first()
    assert req is not None
    for email in (
        "publisher@harborpoint.example",
        "approver2@harborpoint.example",
        "compliance@harborpoint.example",
        "admin@harborpoint.example",
    ):
        client.force_login(Person.objects.get(email=email))
        pages = ["/publishing/", "/publishing/calendar/", "/publishing/inbox/"]
        pages += ["/publishing/rogue/", "/publishing/notifications/"]
        pages += [f"/publishing/drafts/{pk}/" for pk in draft_ids]
        pages += [f"/publishing/reviews/{req.pk}/"]
        if "publisher" in email:
            pages += ["/publishing/compose/"]
        if email.startswith(("compliance", "admin")):
            pages += ["/publishing/freezes/", "/publishing/chains/", "/publishing/delegations/"]
        for url in pages:
            r = client.get(url)
            assert r.status_code == 200, (email, url, r.status_code)
    client.force_login(Person.objects.get(email="compliance@harborpoint.example"))
    r = client.post("/publishing/freezes/", {"reason": "Storm hitting the coast"})
    assert r.status_code == 302
    freeze = Freeze.objects.get()
    assert client.get(f"/publishing/freezes/{freeze.pk}/").status_code == 200
    account_page = client.get(f"/accounts/{Publication.objects.first().account_id}/")  # type: ignore[union-attr]
    assert "did not come through Vetline" in account_page.content.decode()
    assert "freeze-banner" in account_page.content.decode()
