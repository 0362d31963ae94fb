"""The pages, through HTTP: propose with a photo, live screening, the vetting inbox with
highlights and one-click decisions, four-eyes in the UI, and the drift page."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from vetline.identity.roles import Role
from vetline.profiles import actions
from vetline.profiles.models import ProfileProposal
from vetline.profiles.photos import tiny_png

pytestmark = pytest.mark.django_db


def _edit_url(world: Any) -> str:
    return f"/profiles/accounts/{world.employee_account.pk}/"


def _form(**overrides: Any) -> dict[str, Any]:
    data = {
        "display_name": "Jane Advisor",
        "title": "Senior Advisor",
        "bio": "Financial advisor.",
        "links": "https://harborpoint.example/jane\n",
    }
    data.update(overrides)
    return data


def test_employee_proposes_with_a_photo_and_submits(
    world: Any, profile_policy: Any, login: Any
) -> None:
    client = login(world.people[Role.EMPLOYEE])
    page = client.get("/profiles/")
    assert page.status_code == 200 and world.employee_account.handle in page.content.decode()
    photo = SimpleUploadedFile("me.png", tiny_png(), content_type="image/png")
    response = client.post(_edit_url(world), {**_form(), "photo": photo, "submit": "1"})
    assert response.status_code == 302
    proposal = ProfileProposal.objects.get(account=world.employee_account)
    assert proposal.status == "submitted"
    revision = proposal.current_revision
    assert revision is not None and revision.photo_mime_type == "image/png"
    assert revision.links == ["https://harborpoint.example/jane"]
    # The photo is served to the owner, with the type it was checked as, never sniffed.
    served = client.get(f"/profiles/photos/{revision.photo_sha256}/")
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served.content == tiny_png()


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (
            SimpleUploadedFile("cv.pdf", b"%PDF-1.7 ...", content_type="image/png"),
            "not a supported",
        ),
        (
            SimpleUploadedFile("big.png", tiny_png() + b"\x00" * (6 * 1024 * 1024)),
            "too large",
        ),
    ],
)
def test_bad_photos_get_a_clear_error_on_the_form(
    world: Any, profile_policy: Any, login: Any, upload: Any, message: str
) -> None:
    client = login(world.people[Role.EMPLOYEE])
    response = client.post(_edit_url(world), {**_form(), "photo": upload})
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not ProfileProposal.objects.filter(revisions__isnull=False).exists()


def test_live_screening_highlights_hits_without_saving(
    world: Any, profile_policy: Any, login: Any
) -> None:
    client = login(world.people[Role.EMPLOYEE])
    response = client.post(
        f"{_edit_url(world)}screen/",
        _form(bio="Guaranteed returns for all."),
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert '<mark class="sev-block"' in body and "Guaranteed returns" in body
    assert 'id="verdict">block<' in body
    assert not ProfileProposal.objects.exists()


def test_other_people_cannot_open_the_proposal_form(world: Any, login: Any) -> None:
    client = login(world.people[Role.COMPLIANCE_OFFICER])
    assert client.get(_edit_url(world)).status_code == 404


def test_inbox_shows_highlights_and_approves_in_one_click(
    world: Any, profile_policy: Any, login: Any
) -> None:
    actions.save_proposal(
        actor=world.people[Role.EMPLOYEE],
        account=world.employee_account,
        display_name="Jane Advisor",
        title="Rockstar advisor",
        submit=True,
    )
    client = login(world.people[Role.COMPLIANCE_OFFICER])
    inbox = client.get("/profiles/inbox/").content.decode()
    assert '<mark class="sev-warn"' in inbox and "rockstar" in inbox
    proposal = ProfileProposal.objects.get()
    response = client.post(
        f"/profiles/{proposal.pk}/decide/",
        {"revision": 1, "decision": "approve", "comment": "", "next": "inbox"},
    )
    assert response.status_code == 302 and response["Location"] == "/profiles/inbox/"
    proposal.refresh_from_db()
    assert proposal.status == "approved" and proposal.approved_revision is not None
    review = client.get(f"/profiles/{proposal.pk}/").content.decode()
    assert "approved version" in review and "Approved by" in review


def test_reject_needs_a_comment_and_the_employee_sees_it(
    world: Any, profile_policy: Any, login: Any, client: Any
) -> None:
    revision = actions.save_proposal(
        actor=world.people[Role.EMPLOYEE],
        account=world.employee_account,
        display_name="Jane",
        submit=True,
    )
    officer = login(world.people[Role.COMPLIANCE_OFFICER])
    url = f"/profiles/{revision.proposal_id}/decide/"
    officer.post(url, {"revision": 1, "decision": "reject", "comment": ""})
    assert ProfileProposal.objects.get().status == "submitted"
    officer.post(url, {"revision": 1, "decision": "reject", "comment": "Add your title."})
    assert ProfileProposal.objects.get().status == "rejected"
    employee = login(world.people[Role.EMPLOYEE])
    page = employee.get(_edit_url(world)).content.decode()
    assert "Returned by compliance" in page and "Add your title." in page


def test_four_eyes_in_the_ui(world: Any, profile_policy: Any, login: Any) -> None:
    from vetline.identity.models import RoleGrant

    employee = world.people[Role.EMPLOYEE]
    RoleGrant.objects.create(person=employee, role=Role.COMPLIANCE_OFFICER.value)
    revision = actions.save_proposal(
        actor=employee, account=world.employee_account, display_name="Jane", submit=True
    )
    client = login(employee)
    inbox = client.get("/profiles/inbox/").content.decode()
    assert "someone else must decide" in inbox
    review = client.get(f"/profiles/{revision.proposal_id}/").content.decode()
    assert 'value="approve"' not in review
    response = client.post(
        f"/profiles/{revision.proposal_id}/decide/", {"revision": 1, "decision": "approve"}
    )
    assert response.status_code == 403
    assert ProfileProposal.objects.get().status == "submitted"


def test_drift_page_shows_the_differences_field_by_field(
    world: Any, profile_policy: Any, login: Any
) -> None:
    from vetline.profiles.tests.matrix import drift

    drift_id = drift(world)
    client = login(world.people[Role.COMPLIANCE_OFFICER])
    listing = client.get("/profiles/drift/").content.decode()
    assert f"/profiles/drift/{drift_id}/" in listing
    page = client.get(f"/profiles/drift/{drift_id}/").content.decode()
    assert 'data-field="bio"' in page and "Guaranteed returns" in page and "Advisor." in page
    response = client.post(f"/profiles/drift/{drift_id}/resolve/", {"comment": "Restored."})
    assert response.status_code == 302
    assert "Restored." in client.get(f"/profiles/drift/{drift_id}/").content.decode()


def test_inbox_queries_do_not_grow_with_the_number_of_profiles(
    world: Any,
    profile_policy: Any,
    login: Any,
    make_person: Any,
    django_assert_max_num_queries: Any,
) -> None:
    from vetline.accounts.models import AccountKind, Network, SocialAccount

    client = login(world.people[Role.COMPLIANCE_OFFICER])

    def add(i: int) -> None:
        owner = make_person(Role.EMPLOYEE, f"e{i}@example.com")
        account = SocialAccount.objects.create(
            network=Network.X, handle=f"@adv{i}", kind=AccountKind.EMPLOYEE, owner=owner
        )
        actions.save_proposal(actor=owner, account=account, display_name=f"Adv {i}", submit=True)

    add(0)
    client.get("/profiles/inbox/")  # warm the session and caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert client.get("/profiles/inbox/").status_code == 200
    for i in range(1, 6):
        add(i)
    with django_assert_max_num_queries(len(one.captured_queries)):
        body = client.get("/profiles/inbox/").content.decode()
    assert body.count('value="approve"') == 6


@pytest.mark.parametrize(
    "path",
    [
        "/profiles/accounts/99999999999999999999999/",
        "/profiles/99999999999999999999999/",
        "/profiles/1/revisions/99999999999999999999999/",
        "/profiles/drift/99999999999999999999999/",
    ],
)
def test_out_of_range_ids_are_404_not_500(
    world: Any, profile_policy: Any, login: Any, path: str
) -> None:
    actions.save_proposal(
        actor=world.people[Role.EMPLOYEE], account=world.employee_account, display_name="J"
    )
    client = login(world.people[Role.COMPLIANCE_OFFICER])
    assert client.get(path).status_code == 404
