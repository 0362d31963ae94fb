"""The text of the supervision e-mails: the digest of new items, the overdue notice and the
escalation to supervision managers. Plain Python, no ORM: the facts come in as plain values.

What an e-mail may say is deliberately narrow: item numbers, queue names, where the item came
from (flagged or sampled), its age and due date, and links into Vetline. Never the text of the
communication (a direct message stays in Vetline, behind the reviewer's sign-in), never a
queue the recipient does not review.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True, slots=True)
class ItemLine:
    """One item as an e-mail names it."""

    id: int
    queue_id: int
    queue: str
    source: str
    created_at: dt.datetime
    due_at: dt.datetime | None
    escalation_level: int = 0
    assignee: str = ""


@dataclass(frozen=True, slots=True)
class Mail:
    subject: str
    body: str


def queue_url(base_url: str, queue_id: int) -> str:
    return f"{base_url.rstrip('/')}/supervision/?{urlencode({'queue': queue_id})}"


def item_url(base_url: str, item_id: int) -> str:
    return f"{base_url.rstrip('/')}/supervision/items/{item_id}/"


def age(now: dt.datetime, then: dt.datetime) -> str:
    """A short age: 45 min, 5 h, 3 d."""
    minutes = max(0, int((now - then).total_seconds() // 60))
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


def _line(item: ItemLine, *, base_url: str, now: dt.datetime) -> str:
    level = f", escalation level {item.escalation_level}" if item.escalation_level else ""
    due = f", due {item.due_at:%Y-%m-%d %H:%M} UTC" if item.due_at else ""
    who = f", with {item.assignee}" if item.assignee else ""
    return (
        f"  #{item.id} in {item.queue} ({item.source}{level}), waiting {age(now, item.created_at)}"
        f"{due}{who}\n    {item_url(base_url, item.id)}"
    )


def digest(
    *,
    name: str,
    counts: Mapping[int, int],
    queue_names: Mapping[int, str],
    oldest: Sequence[ItemLine],
    base_url: str,
    now: dt.datetime,
) -> Mail:
    """New items for one reviewer: how many per queue (each with a link to the queue page)
    and the oldest of them."""
    total = sum(counts.values())
    subject = f"[Vetline] {total} new review item{'s' if total != 1 else ''} waiting"
    lines = [f"Hello {name},", "", f"{total} new item{'s' if total != 1 else ''} to review:", ""]
    for queue_id in sorted(counts, key=lambda q: (queue_names.get(q, ""), q)):
        n = counts[queue_id]
        lines.append(f"  {queue_names.get(queue_id, f'queue {queue_id}')}: {n}")
        lines.append(f"    {queue_url(base_url, queue_id)}")
    if oldest:
        lines += ["", "The oldest of them:", ""]
        lines += [_line(i, base_url=base_url, now=now) for i in oldest]
    lines += [
        "",
        "You receive this digest because you review these queues. You can switch it off under",
        f"Supervision → Notifications ({base_url.rstrip('/')}/supervision/notifications/).",
        "Overdue notices cannot be switched off.",
    ]
    return Mail(subject=subject, body="\n".join(lines) + "\n")


def overdue(
    *,
    name: str,
    items: Sequence[ItemLine],
    escalation: bool,
    base_url: str,
    now: dt.datetime,
) -> Mail:
    """Items past their due date: to their reviewer (``escalation`` False) or to a
    supervision manager (``escalation`` True)."""
    n = len(items)
    noun = f"review item{'s' if n != 1 else ''}"
    if escalation:
        subject = f"[Vetline] Escalation: {n} {noun} overdue"
        intro = (
            f"{n} {noun} passed their due date without a disposition. You receive this as a "
            "supervision manager: assign, review or follow up."
        )
    else:
        subject = f"[Vetline] {n} {noun} overdue"
        intro = (
            f"{n} {noun} you are responsible for passed their due date without a disposition. "
            "The supervision managers have been told."
        )
    lines = [f"Hello {name},", "", intro, ""]
    lines += [_line(i, base_url=base_url, now=now) for i in items]
    return Mail(subject=subject, body="\n".join(lines) + "\n")
