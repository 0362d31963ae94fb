"""Permission-matrix entries for the supervision app's pages and API operations.

``vetline/core/tests/test_permission_matrix.py`` merges these into its tables; every page and
every API operation of this app needs an entry (see that module for how a Case is written).

Object scoping: the review item of these cases sits in a queue the Supervisor reviews, so the
Supervisor reaches it; a reviewer of another queue never does (see test_scoping.py)."""

from __future__ import annotations

from typing import Any

from vetline.core.tests.matrix_support import Case
from vetline.identity.roles import Role

REVIEWERS = frozenset({Role.COMPLIANCE_OFFICER, Role.SUPERVISOR})
MANAGERS = frozenset({Role.COMPLIANCE_OFFICER})
INSPECTORS = frozenset({Role.COMPLIANCE_OFFICER, Role.EXECUTIVE})


def _desk(w: Any) -> Any:
    """A queue reviewed by the Supervisor, with one flagged item (the real ingest and the real
    flag follower, screening with the matrix world's policy), created once per world."""
    if getattr(w, "supervision", None) is not None:
        return w.supervision
    from types import SimpleNamespace

    from vetline.archive.actions import ingest_batch
    from vetline.supervision import actions
    from vetline.supervision.models import ReviewItem

    co = w.people[Role.COMPLIANCE_OFFICER]
    queue = actions.create_queue(
        actor=co, name="Matrix queue", reviewers=[w.people[Role.SUPERVISOR]], is_default=True
    )
    report = ingest_batch(
        items=[
            {"remote_id": "sv-1", "kind": "post", "direction": "outbound", "text": "y x"},
            {"remote_id": "sv-2", "kind": "post", "direction": "outbound", "text": "x y"},
        ],
        account=w.corporate,
        source="matrix",
        actor=None,
    )
    actions.process_new_records()
    ids = [i.record_id for i in report.items]
    items = list(ReviewItem.objects.filter(record_id__in=ids).order_by("record_id"))
    assert len(items) == 2, "the matrix policy must flag the records"
    w.supervision = SimpleNamespace(queue=queue, item=items[0], other_item=items[1])
    return w.supervision


def item(w: Any) -> int:
    return int(_desk(w).item.pk)


def claimed_item(w: Any) -> int:
    """An item the Supervisor is reviewing."""
    from vetline.supervision import actions

    desk = _desk(w)
    actions.claim_item(actor=w.people[Role.SUPERVISOR], item=desk.other_item)
    return int(desk.other_item.pk)


def plan(w: Any) -> int:
    from vetline.supervision import actions

    co = w.people[Role.COMPLIANCE_OFFICER]
    pop = actions.create_population(actor=co, name="Matrix population", accounts=[w.corporate])
    return int(
        actions.create_sampling_plan(
            actor=co,
            name="Matrix plan",
            population=pop,
            queue=_desk(w).queue,
            period="daily",
            method="fixed_rate",
            fixed_rate_percent="10",
        ).pk
    )


def retro_run(w: Any) -> int:
    import datetime as dt

    from django.utils import timezone

    from vetline.policy.models import Policy
    from vetline.supervision import actions

    now = timezone.now()
    return int(
        actions.start_retro_run(
            actor=w.people[Role.COMPLIANCE_OFFICER],
            policy=Policy.objects.first(),  # type: ignore[arg-type]
            captured_from=now - dt.timedelta(days=1),
            captured_to=now,
            run_now=False,
        ).pk
    )


def report(w: Any) -> int:
    import datetime as dt

    from django.utils import timezone

    from vetline.supervision.report import generate_report

    now = timezone.now()
    return int(
        generate_report(
            actor=w.people[Role.COMPLIANCE_OFFICER], start=now - dt.timedelta(days=7), end=now
        ).pk
    )


def _today() -> str:
    from django.utils import timezone

    return timezone.now().date().isoformat()


PAGES: dict[str, list[Case]] = {
    "supervision:queue": [Case("GET", lambda w: "/supervision/", REVIEWERS)],
    "supervision:notifications": [
        Case("GET", lambda w: "/supervision/notifications/", REVIEWERS),
        Case(
            "POST",
            lambda w: "/supervision/notifications/",
            REVIEWERS,
            data=lambda w: {"digest_enabled": "0"},
        ),
    ],
    "supervision:item": [
        Case("GET", lambda w: f"/supervision/items/{item(w)}/", REVIEWERS, note="scoped")
    ],
    "supervision:item_claim": [
        Case("POST", lambda w: f"/supervision/items/{item(w)}/claim/", REVIEWERS)
    ],
    "supervision:item_release": [
        Case("POST", lambda w: f"/supervision/items/{claimed_item(w)}/release/", REVIEWERS)
    ],
    "supervision:item_assign": [
        Case(
            "POST",
            lambda w: f"/supervision/items/{item(w)}/assign/",
            MANAGERS,
            data=lambda w: {"assignee": w.people[Role.SUPERVISOR].pk},
        )
    ],
    "supervision:item_dispose": [
        Case(
            "POST",
            lambda w: f"/supervision/items/{item(w)}/disposition/",
            REVIEWERS,
            data=lambda w: {"disposition": "false_positive", "comment": "Matrix."},
        )
    ],
    "supervision:bulk": [
        Case(
            "POST",
            lambda w: "/supervision/bulk-false-positives/",
            REVIEWERS,
            data=lambda w: {"items": [item(w)], "reason": "Matrix."},
        )
    ],
    "supervision:manage": [
        Case("GET", lambda w: "/supervision/manage/", MANAGERS),
        Case(
            "POST",
            lambda w: "/supervision/manage/",
            MANAGERS,
            data=lambda w: {"form": "queue", "name": "Posted queue", "sla_days": "3"},
        ),
    ],
    "supervision:plans": [
        Case("GET", lambda w: "/supervision/plans/", MANAGERS),
    ],
    "supervision:plan": [Case("GET", lambda w: f"/supervision/plans/{plan(w)}/", MANAGERS)],
    "supervision:plan_run": [
        Case(
            "POST",
            lambda w: f"/supervision/plans/{plan(w)}/run/",
            MANAGERS,
            data=lambda w: {"day": _today()},
        )
    ],
    "supervision:retro": [Case("GET", lambda w: "/supervision/retro/", MANAGERS)],
    "supervision:retro_detail": [
        Case("GET", lambda w: f"/supervision/retro/{retro_run(w)}/", MANAGERS)
    ],
    "supervision:inspect": [
        Case(
            "GET",
            lambda w: (
                f"/supervision/inspect/?account={w.corporate.pk}&start=2020-01-01&end={_today()}"
            ),
            INSPECTORS,
        )
    ],
    "supervision:metrics": [Case("GET", lambda w: "/supervision/metrics/", REVIEWERS)],
    "supervision:reports": [Case("GET", lambda w: "/supervision/reports/", MANAGERS)],
    "supervision:report": [Case("GET", lambda w: f"/supervision/reports/{report(w)}/", MANAGERS)],
    "supervision:report_csv": [
        Case("GET", lambda w: f"/supervision/reports/{report(w)}/csv/", MANAGERS)
    ],
}

API: dict[str, list[Case]] = {
    "GET /api/supervision/queues": [Case("GET", lambda w: "/api/supervision/queues", REVIEWERS)],
    "GET /api/supervision/items": [Case("GET", lambda w: "/api/supervision/items", REVIEWERS)],
    "GET /api/supervision/items/{item_id}": [
        Case("GET", lambda w: f"/api/supervision/items/{item(w)}", REVIEWERS, note="scoped")
    ],
    "GET /api/supervision/items/{item_id}/evidence": [
        Case("GET", lambda w: f"/api/supervision/items/{item(w)}/evidence", REVIEWERS)
    ],
    "POST /api/supervision/items/{item_id}/claim": [
        Case("POST", lambda w: f"/api/supervision/items/{item(w)}/claim", REVIEWERS)
    ],
    "POST /api/supervision/items/{item_id}/release": [
        Case("POST", lambda w: f"/api/supervision/items/{claimed_item(w)}/release", REVIEWERS)
    ],
    "POST /api/supervision/items/{item_id}/assign": [
        Case(
            "POST",
            lambda w: f"/api/supervision/items/{item(w)}/assign",
            MANAGERS,
            data=lambda w: {"assignee_id": w.people[Role.SUPERVISOR].pk},
        )
    ],
    "POST /api/supervision/items/{item_id}/disposition": [
        Case(
            "POST",
            lambda w: f"/api/supervision/items/{item(w)}/disposition",
            REVIEWERS,
            data=lambda w: {"disposition": "violation_coached", "comment": "Coached."},
        )
    ],
    "POST /api/supervision/bulk-false-positive": [
        Case(
            "POST",
            lambda w: "/api/supervision/bulk-false-positive",
            REVIEWERS,
            data=lambda w: {"item_ids": [item(w)], "reason": "Matrix."},
        )
    ],
}
