"""The lifecycle of a review item, declared in one place (plain Python, no ORM).

::

    open ──► claimed ──► closed            (no issue, false positive, violation coached)
      ▲  │      │  ├──► needs_info ──► claimed / closed / escalated / open
      │  │      │  └──► escalated ──► claimed (by the next level: compliance officers)
      └──┼──────┘ (released)
         └──► closed                      (bulk disposition of false positives)

An item is worked by one reviewer at a time (``claimed``). A disposition of *violation,
escalated* moves the item up the escalation chain (the queue's ``escalate_to``), where it waits,
``escalated``, for someone at that level; at the top of the chain (compliance officers) the same
disposition closes it. An undeclared transition raises :class:`IllegalTransition`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class ReviewState(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    NEEDS_INFO = "needs_info"
    ESCALATED = "escalated"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return STATE_LABELS[self]

    @property
    def is_open(self) -> bool:
        return self is not ReviewState.CLOSED


STATE_LABELS: Final = {
    ReviewState.OPEN: "Waiting for a reviewer",
    ReviewState.CLAIMED: "Being reviewed",
    ReviewState.NEEDS_INFO: "Needs more information",
    ReviewState.ESCALATED: "Escalated, waiting for the next level",
    ReviewState.CLOSED: "Closed",
}

OPEN_STATES: Final = frozenset(s for s in ReviewState if s.is_open)


class Disposition(StrEnum):
    NO_ISSUE = "no_issue"
    FALSE_POSITIVE = "false_positive"
    VIOLATION_COACHED = "violation_coached"
    VIOLATION_ESCALATED = "violation_escalated"
    NEEDS_INFO = "needs_info"

    @property
    def label(self) -> str:
        return DISPOSITION_LABELS[self]

    @property
    def needs_comment(self) -> bool:
        return self is not Disposition.NO_ISSUE

    @property
    def is_violation(self) -> bool:
        return self in (Disposition.VIOLATION_COACHED, Disposition.VIOLATION_ESCALATED)


DISPOSITION_LABELS: Final = {
    Disposition.NO_ISSUE: "No issue",
    Disposition.FALSE_POSITIVE: "False positive",
    Disposition.VIOLATION_COACHED: "Violation — coached",
    Disposition.VIOLATION_ESCALATED: "Violation — escalated",
    Disposition.NEEDS_INFO: "Needs more information",
}

_S = ReviewState
TRANSITIONS: Final[dict[ReviewState, frozenset[ReviewState]]] = {
    _S.OPEN: frozenset({_S.CLAIMED, _S.CLOSED}),
    _S.CLAIMED: frozenset({_S.OPEN, _S.CLAIMED, _S.CLOSED, _S.NEEDS_INFO, _S.ESCALATED}),
    _S.NEEDS_INFO: frozenset({_S.OPEN, _S.CLAIMED, _S.CLOSED, _S.ESCALATED, _S.NEEDS_INFO}),
    _S.ESCALATED: frozenset({_S.CLAIMED}),
    _S.CLOSED: frozenset(),
}


class IllegalTransition(ValueError):
    def __init__(self, current: ReviewState, target: ReviewState) -> None:
        super().__init__(f"A review item cannot go from “{current.label}” to “{target.label}”.")
        self.current = current
        self.target = target


def check_transition(current: ReviewState | str, target: ReviewState | str) -> None:
    current, target = ReviewState(current), ReviewState(target)
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)


def state_after(disposition: Disposition, *, top_of_chain: bool) -> ReviewState:
    """Where a disposition takes an item that is being reviewed."""
    if disposition is Disposition.NEEDS_INFO:
        return ReviewState.NEEDS_INFO
    if disposition is Disposition.VIOLATION_ESCALATED and not top_of_chain:
        return ReviewState.ESCALATED
    return ReviewState.CLOSED
