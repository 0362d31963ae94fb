"""The API: the same operations and the same rules as the pages."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from vetline.identity.roles import Role
from vetline.profiles.photos import tiny_png

pytestmark = pytest.mark.django_db


def _put(call: Any, world: Any, **body: Any) -> Any:
    return call(
        "PUT",
        f"/api/profiles/accounts/{world.employee_account.pk}/proposal",
        json={"display_name": "Jane Advisor", **body},
    )


def test_propose_submit_and_approve_through_the_api(
    world: Any, profile_policy: Any, api: Any
) -> None:
    employee = api(world.people[Role.EMPLOYEE])
    response = _put(
        employee,
        world,
        bio="Financial advisor.",
        links=["https://harborpoint.example/jane"],
        photo_base64=base64.b64encode(tiny_png()).decode(),
        submit=True,
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "submitted"
    assert body["current_revision"]["photo_mime_type"] == "image/png"
    proposal_id = body["id"]
    assert [a["proposal_id"] for a in employee("GET", "/api/profiles/accounts").json()] == [
        proposal_id
    ]

    officer = api(world.people[Role.COMPLIANCE_OFFICER])
    stale = officer("POST", f"/api/profiles/proposals/{proposal_id}/approve", json={"revision": 2})
    assert stale.status_code == 409
    approved = officer(
        "POST", f"/api/profiles/proposals/{proposal_id}/approve", json={"revision": 1}
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["approved_revision"]["number"] == 1


def test_four_eyes_through_the_api(world: Any, profile_policy: Any, api: Any) -> None:
    from vetline.identity.models import RoleGrant

    employee = world.people[Role.EMPLOYEE]
    RoleGrant.objects.create(person=employee, role=Role.COMPLIANCE_OFFICER.value)
    call = api(employee)
    proposal_id = _put(call, world, submit=True).json()["id"]
    response = call("POST", f"/api/profiles/proposals/{proposal_id}/approve", json={"revision": 1})
    assert response.status_code == 403 and response.json()["code"] == "four_eyes"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"photo_base64": "***"}, "photo_base64"),
        ({"photo_base64": base64.b64encode(b"GIF89a\x01\x00\x01\x00").decode()}, "photo"),
        ({"links": ["javascript:alert(1)"]}, "links"),
        ({"display_name": ""}, "payload.display_name"),
    ],
)
def test_bad_input_is_a_clear_422(
    world: Any, profile_policy: Any, api: Any, body: dict[str, Any], field: str
) -> None:
    response = _put(api(world.people[Role.EMPLOYEE]), world, **body)
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field and response.json()["detail"]


def test_a_block_hit_refuses_submission(world: Any, profile_policy: Any, api: Any) -> None:
    response = _put(api(world.people[Role.EMPLOYEE]), world, bio="Guaranteed returns!", submit=True)
    assert response.status_code == 422 and response.json()["code"] == "screening_blocked"
