"""Capture by re-fetch sweeps, shared by the Facebook Pages, Instagram and LinkedIn connectors
and available to any plugin whose network only lists objects (plain Python, no ORM).

None of these networks lets a polling client ask "what changed since X": they list objects,
newest first, and say nothing of edits made to old ones or of deletions. So capture works in
*sweeps*. A sweep re-reads a recent window (``window_seconds``, a week by default; everything on
the first sweep, which is the backfill) of the account's own posts, queues a read of the
comments of each of them, of the conversations, of the mentions and of the profile, and finally
checks that every own post seen by the previous sweep inside the window is still there: one
that is missing is looked up on its own, and only a "no such object" answer makes it a
deletion. Items read again unchanged are duplicates for the archive (idempotent ingest). An own
post whose content changed since the previous sweep is an edit (kind ``edit``, the archive's
next version): the cursor keeps a digest of each own post seen, because these APIs give no
reliable edit time (Facebook's ``updated_time`` also moves when someone comments) and no edit
history.

The whole sweep state is the cursor: the queue of reads still to do (with the network's paging
token of each), and the ids of the own posts seen. Each call of ``fetch_activity`` does one
read (one HTTP page), so the framework stores the cursor with the items of that page in one
transaction, and a crash resumes at the next read. The cursor never holds a token.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from vetline.connectors.base import ActivityPage, Malformed, PermanentError, raw_item

logger = logging.getLogger(__name__)

CURSOR_VERSION: Final = 1
DEFAULT_WINDOW_SECONDS: Final = 7 * 24 * 3600
#: own posts remembered for the deletion check; beyond it the oldest are forgotten
MAX_KNOWN: Final = 2000
CONFIRM_STREAM: Final = "confirm"


class ObjectGone(PermanentError):
    """The object does not exist (any more): deleted, or never visible to this token.
    ``answer`` is the network's response body, kept as the raw payload of a deletion."""

    def __init__(self, message: str, *, answer: bytes = b"") -> None:
        super().__init__(message)
        self.answer = answer


def rescan_window_seconds(config: Mapping[str, Any]) -> float:
    """The re-fetch window of a sweep: the operator's ``rescan_days``, else a week."""
    return float(config.get("rescan_days", 0) or 0) * 86400 or float(DEFAULT_WINDOW_SECONDS)


@dataclass(slots=True)
class Task:
    """One read to do: a stream (``posts``, ``comments``…), its object and its paging token."""

    stream: str
    target: str = ""
    page: str = ""


#: what the cursor remembers of an own post: [created (epoch s), content digest, edited 0/1]
Seen = list[Any]


@dataclass(slots=True)
class TaskResult:
    items: list[Mapping[str, Any] | bytes | Malformed] = field(default_factory=list)
    next_page: Task | None = None  # the rest of the same listing: read next
    follow_ups: list[Task] = field(default_factory=list)  # queued after everything else
    seen: dict[str, Seen] = field(default_factory=dict)  # own posts seen


@dataclass(slots=True)
class SweepCursor:
    tasks: list[Task] = field(default_factory=list)
    active: bool = False
    confirming: bool = False
    window_start: float = 0.0
    known: dict[str, Seen] = field(default_factory=dict)
    seen: dict[str, Seen] = field(default_factory=dict)
    sweeps: int = 0

    @classmethod
    def load(cls, cursor: str | None) -> SweepCursor:
        """The stored cursor; one that cannot be read starts afresh (a full backfill, which
        the archive's idempotency turns into duplicates, never into losses)."""
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
                raise ValueError("unknown cursor version")
            return cls(
                tasks=[Task(str(s), str(t), str(p)) for s, t, p in data["tasks"]],
                active=bool(data["active"]),
                confirming=bool(data["confirming"]),
                window_start=float(data["window_start"]),
                known={str(k): _seen(v) for k, v in data["known"].items()},
                seen={str(k): _seen(v) for k, v in data["seen"].items()},
                sweeps=int(data["sweeps"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            logger.warning("connector.cursor.unreadable", extra={"length": len(cursor)})
            return cls()

    def dump(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "tasks": [[t.stream, t.target, t.page] for t in self.tasks],
                "active": self.active,
                "confirming": self.confirming,
                "window_start": self.window_start,
                "known": self.known,
                "seen": self.seen,
                "sweeps": self.sweeps,
            },
            separators=(",", ":"),
            sort_keys=True,
        )


def _seen(value: Any) -> Seen:
    created, digest, edited = value
    return [float(created), str(digest), 1 if edited else 0]


def run_step(
    cursor: str | None,
    *,
    now: float,
    window_seconds: float,
    seed: Callable[[], list[Task]],
    run: Callable[[Task, SweepCursor], TaskResult],
) -> ActivityPage:
    """Do the next read of the sweep in progress (starting one when idle)."""
    state = SweepCursor.load(cursor)
    if not state.active:
        # The first sweep reads everything (backfill); later ones the recent window.
        state.window_start = 0.0 if state.sweeps == 0 else max(0.0, now - window_seconds)
        state.tasks = seed()
        state.active = True
        state.confirming = False
        state.seen = {}
    items: list[Mapping[str, Any] | bytes | Malformed] = []
    if state.tasks:
        task = state.tasks.pop(0)
        result = run(task, state)
        items = result.items
        state.seen.update(result.seen)
        if result.next_page is not None:
            state.tasks.insert(0, result.next_page)
        state.tasks.extend(result.follow_ups)
    if not state.tasks and not state.confirming:
        state.confirming = True
        missing = sorted(
            rid
            for rid, entry in state.known.items()
            if rid not in state.seen and entry[0] >= state.window_start
        )
        state.tasks = [Task(CONFIRM_STREAM, rid) for rid in missing]
    if not state.tasks:
        keep = sorted(state.seen.items(), key=lambda kv: kv[1][0], reverse=True)
        horizon = now - window_seconds
        state.known = {rid: entry for rid, entry in keep[:MAX_KNOWN] if entry[0] >= horizon}
        state.seen = {}
        state.active = False
        state.confirming = False
        state.sweeps += 1
    return ActivityPage(items=items, cursor=state.dump(), more=state.active)


# --- Payload helpers ---------------------------------------------------------------------------


def decode_json(body: bytes) -> Any:
    """The JSON value of a response body, or None when it is not JSON (truncated, HTML…).

    Invalid UTF-8 does not spoil the whole page: the bad bytes are carried as surrogate escapes,
    and :func:`element_bytes` gives them back as they were, so that only the items holding them
    are quarantined (the archive refuses invalid UTF-8 with that reason)."""
    try:
        return json.loads(body.decode("utf-8", "surrogateescape"))
    except ValueError:
        return None


def element_bytes(element: Any) -> bytes:
    """One item's JSON object from a response, as bytes: the same JSON value the network sent,
    written compactly (a list response does not give each element's bytes separately)."""
    text = json.dumps(element, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape")  # the invalid bytes as received
        except UnicodeEncodeError:
            return json.dumps(element, ensure_ascii=True, separators=(",", ":")).encode()


def item(element: Any, **fields: Any) -> dict[str, Any]:
    """An archive item keeping ``element`` (the network's JSON of it) as the raw payload."""
    return raw_item(element_bytes(element), **fields)


def unreadable(element: Any, *, network: str, stream: str, reason: str) -> Malformed:
    """An element that cannot be normalised: its own bytes, which capture quarantines with the
    connector's reason (the bytes are kept; the reason is logged here without the content)."""
    logger.warning(
        "connector.item.unreadable",
        extra={"network": network, "stream": stream, "reason": reason},
    )
    remote_id = element.get("id") if isinstance(element, dict) else None
    return Malformed(
        element_bytes(element),
        f"{network} {stream}: {reason}",
        remote_id=remote_id if isinstance(remote_id, str) else "",
    )


def own_post(
    state: SweepCursor,
    result: TaskResult,
    element: Any,
    *,
    remote_id: str,
    created: float,
    **fields: Any,
) -> None:
    """Add an own post to ``result``: a ``post``, or an ``edit`` when its content changed
    since an earlier sweep (and ever after, so that re-reading it stays a duplicate)."""
    payload = element_bytes(element)
    digest = hashlib.sha256(payload).hexdigest()[:32]
    before = state.known.get(remote_id) or state.seen.get(remote_id)
    edited = bool(before and (before[2] or before[1] != digest))
    if edited:
        fields = {**fields, "kind": "edit", "parent_remote_id": remote_id}
    result.items.append(raw_item(payload, remote_id=remote_id, **fields))
    result.seen[remote_id] = [created, digest, 1 if edited else 0]


def deletion(remote_id: str, *, answer: bytes, author: str, at: str | None) -> dict[str, Any]:
    """A deletion found by re-fetch: the raw payload is the network's "not found" answer."""
    return raw_item(
        answer,
        remote_id=remote_id,
        kind="deletion",
        direction="outbound",
        author=author,
        parent_remote_id=remote_id,
        network_timestamp=at,
    )


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""
