"""The text of supervision e-mails (plain functions, no database)."""

from __future__ import annotations

import datetime as dt

from vetline.supervision import mailtext

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


def _line(pk: int, queue_id: int, queue: str, hours: int) -> mailtext.ItemLine:
    return mailtext.ItemLine(
        id=pk,
        queue_id=queue_id,
        queue=queue,
        source="flagged",
        created_at=NOW - dt.timedelta(hours=hours),
        due_at=NOW + dt.timedelta(days=1),
    )


def test_age_is_short_and_never_negative() -> None:
    assert mailtext.age(NOW, NOW + dt.timedelta(minutes=5)) == "0 min"
    assert mailtext.age(NOW, NOW - dt.timedelta(minutes=45)) == "45 min"
    assert mailtext.age(NOW, NOW - dt.timedelta(hours=5)) == "5 h"
    assert mailtext.age(NOW, NOW - dt.timedelta(days=3, hours=2)) == "3 d"


def test_digest_counts_queues_in_name_order_with_links() -> None:
    m = mailtext.digest(
        name="Sam",
        counts={2: 3, 1: 1},
        queue_names={1: "Zeta", 2: "Alpha"},
        oldest=[_line(7, 2, "Alpha", 5)],
        base_url="https://vetline.example/",
        now=NOW,
    )
    assert m.subject == "[Vetline] 4 new review items waiting"
    assert m.body.index("Alpha: 3") < m.body.index("Zeta: 1")
    assert "https://vetline.example/supervision/?queue=2" in m.body
    assert "#7 in Alpha (flagged), waiting 5 h, due 2026-12-06 12:00 UTC" in m.body
    assert "https://vetline.example/supervision/items/7/" in m.body


def test_overdue_and_escalation_subjects() -> None:
    items = [_line(1, 1, "A", 100), _line(2, 1, "A", 50)]
    assert (
        mailtext.overdue(
            name="x", items=items, escalation=False, base_url="http://h", now=NOW
        ).subject
        == "[Vetline] 2 review items overdue"
    )
    esc = mailtext.overdue(name="x", items=items[:1], escalation=True, base_url="http://h", now=NOW)
    assert esc.subject == "[Vetline] Escalation: 1 review item overdue"
    assert "supervision manager" in esc.body
