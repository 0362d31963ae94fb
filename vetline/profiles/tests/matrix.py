"""Permission-matrix entries for the profiles app's pages and API operations.

``vetline/core/tests/test_permission_matrix.py`` merges these into its tables; every page and
every API operation of this app needs an entry (see that module for how a Case is written).

The objects are made through the actions: the Employee proposes the profile of the account they
own (``w.employee_account``); only they edit it, and only the compliance officer vets it (the
owner never does) or deals with its drift.
"""

from __future__ import annotations

from typing import Any

from vetline.core.tests.matrix_support import ALL, Case
from vetline.identity.roles import Role

OWNER = frozenset({Role.EMPLOYEE})
VETTERS = frozenset({Role.COMPLIANCE_OFFICER})
OWNER_AND_VETTERS = OWNER | VETTERS


def _save(w: Any, *, submit: bool, bio: str = "Advisor.") -> Any:
    from vetline.profiles.actions import save_proposal
    from vetline.profiles.photos import tiny_png

    return save_proposal(
        actor=w.people[Role.EMPLOYEE],
        account=w.employee_account,
        display_name="Jane Advisor",
        bio=bio,
        photo=tiny_png(),
        submit=submit,
    )


def proposal(w: Any) -> int:
    """A draft proposal of the Employee's account."""
    return int(_save(w, submit=False).proposal_id)


def submitted(w: Any) -> int:
    """A proposal waiting for compliance."""
    return int(_save(w, submit=True).proposal_id)


def photo(w: Any) -> str:
    return str(_save(w, submit=False).photo_sha256)


def drift(w: Any) -> int:
    """An open drift item: the approved profile, then a captured snapshot that differs."""
    from vetline.archive.actions import ingest_batch
    from vetline.profiles.actions import approve_proposal, detect_drift
    from vetline.profiles.models import ProfileDrift

    revision = _save(w, submit=True)
    approve_proposal(
        actor=w.people[Role.COMPLIANCE_OFFICER], proposal=revision.proposal, revision_number=1
    )
    ingest_batch(
        items=[
            {
                "remote_id": "profile:matrix:1",
                "kind": "profile_snapshot",
                "direction": "outbound",
                "text": "Jane Advisor\nGuaranteed returns",
                "raw": {"display_name": "Jane Advisor", "bio": "Guaranteed returns"},
            }
        ],
        account=w.employee_account,
        source="matrix",
        actor=None,
    )
    detect_drift()
    return int(ProfileDrift.objects.get(account=w.employee_account).pk)


def _form(w: Any) -> dict[str, Any]:
    return {"display_name": "Jane Advisor", "bio": "Advisor.", "links": "https://e.example"}


def _decision(w: Any) -> dict[str, Any]:
    return {"revision": 1, "decision": "approve", "comment": "ok"}


PAGES: dict[str, list[Case]] = {
    "profiles:mine": [Case("GET", lambda w: "/profiles/", ALL)],
    "profiles:edit": [
        Case("GET", lambda w: f"/profiles/accounts/{w.employee_account.pk}/", OWNER),
        Case("POST", lambda w: f"/profiles/accounts/{w.employee_account.pk}/", OWNER, data=_form),
    ],
    "profiles:screen": [
        Case(
            "POST",
            lambda w: f"/profiles/accounts/{w.employee_account.pk}/screen/",
            OWNER,
            data=_form,
        )
    ],
    "profiles:inbox": [Case("GET", lambda w: "/profiles/inbox/", VETTERS)],
    "profiles:review": [Case("GET", lambda w: f"/profiles/{submitted(w)}/", OWNER_AND_VETTERS)],
    "profiles:submit": [Case("POST", lambda w: f"/profiles/{proposal(w)}/submit/", OWNER)],
    "profiles:withdraw": [Case("POST", lambda w: f"/profiles/{submitted(w)}/withdraw/", OWNER)],
    "profiles:decide": [
        Case("POST", lambda w: f"/profiles/{submitted(w)}/decide/", VETTERS, data=_decision)
    ],
    "profiles:revision": [
        Case("GET", lambda w: f"/profiles/{proposal(w)}/revisions/1/", OWNER_AND_VETTERS)
    ],
    "profiles:photo": [Case("GET", lambda w: f"/profiles/photos/{photo(w)}/", OWNER_AND_VETTERS)],
    "profiles:drifts": [Case("GET", lambda w: "/profiles/drift/", ALL, note="scoped list")],
    "profiles:drift": [Case("GET", lambda w: f"/profiles/drift/{drift(w)}/", OWNER_AND_VETTERS)],
    "profiles:drift_acknowledge": [
        Case("POST", lambda w: f"/profiles/drift/{drift(w)}/acknowledge/", VETTERS)
    ],
    "profiles:drift_resolve": [
        Case(
            "POST",
            lambda w: f"/profiles/drift/{drift(w)}/resolve/",
            VETTERS,
            data=lambda w: {"comment": "Restored."},
        )
    ],
}

API: dict[str, list[Case]] = {
    "GET /api/profiles/accounts": [Case("GET", lambda w: "/api/profiles/accounts", ALL)],
    "PUT /api/profiles/accounts/{account_id}/proposal": [
        Case(
            "PUT",
            lambda w: f"/api/profiles/accounts/{w.employee_account.pk}/proposal",
            OWNER,
            data=lambda w: {"display_name": "Jane Advisor", "links": ["https://e.example"]},
        )
    ],
    "GET /api/profiles/proposals": [
        Case("GET", lambda w: "/api/profiles/proposals", ALL, note="scoped list")
    ],
    "GET /api/profiles/proposals/{proposal_id}": [
        Case("GET", lambda w: f"/api/profiles/proposals/{proposal(w)}", OWNER_AND_VETTERS)
    ],
    "GET /api/profiles/proposals/{proposal_id}/revisions/{number}": [
        Case(
            "GET",
            lambda w: f"/api/profiles/proposals/{proposal(w)}/revisions/1",
            OWNER_AND_VETTERS,
        )
    ],
    "POST /api/profiles/proposals/{proposal_id}/submit": [
        Case("POST", lambda w: f"/api/profiles/proposals/{proposal(w)}/submit", OWNER)
    ],
    "POST /api/profiles/proposals/{proposal_id}/withdraw": [
        Case("POST", lambda w: f"/api/profiles/proposals/{submitted(w)}/withdraw", OWNER)
    ],
    "POST /api/profiles/proposals/{proposal_id}/approve": [
        Case(
            "POST",
            lambda w: f"/api/profiles/proposals/{submitted(w)}/approve",
            VETTERS,
            data=lambda w: {"revision": 1},
        )
    ],
    "POST /api/profiles/proposals/{proposal_id}/reject": [
        Case(
            "POST",
            lambda w: f"/api/profiles/proposals/{submitted(w)}/reject",
            VETTERS,
            data=lambda w: {"revision": 1, "comment": "Use your registered title."},
        )
    ],
    "GET /api/profiles/drifts": [
        Case("GET", lambda w: "/api/profiles/drifts", ALL, note="scoped list")
    ],
    "GET /api/profiles/drifts/{drift_id}": [
        Case("GET", lambda w: f"/api/profiles/drifts/{drift(w)}", OWNER_AND_VETTERS)
    ],
    "POST /api/profiles/drifts/{drift_id}/acknowledge": [
        Case(
            "POST",
            lambda w: f"/api/profiles/drifts/{drift(w)}/acknowledge",
            VETTERS,
            data=lambda w: {"comment": "Seen."},
        )
    ],
    "POST /api/profiles/drifts/{drift_id}/resolve": [
        Case(
            "POST",
            lambda w: f"/api/profiles/drifts/{drift(w)}/resolve",
            VETTERS,
            data=lambda w: {"comment": "Restored."},
        )
    ],
}
