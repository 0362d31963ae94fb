"""The workflows of the line of authority, declared in one place (plain Python, no ORM).

Approval request (one per subject revision: a draft revision, a profile proposal revision…)::

    pending ──► approved ──► expired          (the approval outlived its validity)
       │   │         └────► superseded        (the subject was edited: the chain resets)
       │   ├──► rejected                      (returned to its author with a comment)
       │   ├──► withdrawn                     (by its author)
       │   └──► superseded
       └── approved ──► withdrawn             (an approved item that is no longer wanted)

Draft::

    editing ──► in_review ──► approved ──► scheduled ──► publishing ──► published
       ▲            │             │            │              └──► failed ──► scheduled (retry)
       └── rejected ┘             └── frozen ◄─┘  (emergency freeze; lifting re-confirms)
       any state before publishing ──► withdrawn

Publication (one per target account of an approved revision; the unit of *exactly once*)::

    queued ──► sending ──► published
      │  ▲        │   └──► failed
      │  └── (recovery: not found on the network after a crash, send again)
      ├──► frozen ──► queued (re-confirmed) | cancelled
      └──► cancelled

``sending`` is the intent, committed *before* the network call: a worker that finds a
publication in ``sending`` knows a send may have happened and reconciles with the network
instead of sending again.

Settling by hand (a person, when reconciliation cannot capture the account): only from a
stale ``sending``, and only to one of two targets declared in :data:`SETTLE_TARGETS`::

    sending ──► published   (found on the network: recorded as a reconciled one is)
       └──────► failed      (not on the network: the author re-sends or withdraws it)

An undeclared transition raises :class:`IllegalTransition`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, TypeVar


class IllegalTransition(ValueError):
    def __init__(self, what: str, current: str, target: str) -> None:
        super().__init__(f"A {what} cannot go from {current} to {target}.")
        self.current = current
        self.target = target


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"

    @property
    def label(self) -> str:
        return REQUEST_LABELS[self]

    @property
    def is_open(self) -> bool:
        return self in (RequestState.PENDING, RequestState.APPROVED)


REQUEST_LABELS: Final = {
    RequestState.PENDING: "Waiting for approval",
    RequestState.APPROVED: "Approved",
    RequestState.REJECTED: "Rejected",
    RequestState.WITHDRAWN: "Withdrawn",
    RequestState.SUPERSEDED: "Superseded by an edit",
    RequestState.EXPIRED: "Approval expired",
}

_R = RequestState
REQUEST_TRANSITIONS: Final[dict[RequestState, frozenset[RequestState]]] = {
    _R.PENDING: frozenset({_R.APPROVED, _R.REJECTED, _R.WITHDRAWN, _R.SUPERSEDED}),
    _R.APPROVED: frozenset({_R.EXPIRED, _R.SUPERSEDED, _R.WITHDRAWN}),
    _R.REJECTED: frozenset(),
    _R.WITHDRAWN: frozenset(),
    _R.SUPERSEDED: frozenset(),
    _R.EXPIRED: frozenset(),
}


class DraftState(StrEnum):
    EDITING = "editing"
    IN_REVIEW = "in_review"
    REJECTED = "rejected"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    FROZEN = "frozen"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"

    @property
    def label(self) -> str:
        return DRAFT_LABELS[self]

    @property
    def editable(self) -> bool:
        return self in DRAFT_EDITABLE


DRAFT_LABELS: Final = {
    DraftState.EDITING: "Draft",
    DraftState.IN_REVIEW: "In review",
    DraftState.REJECTED: "Returned to author",
    DraftState.APPROVED: "Approved",
    DraftState.SCHEDULED: "Scheduled",
    DraftState.FROZEN: "Frozen",
    DraftState.PUBLISHING: "Publishing",
    DraftState.PUBLISHED: "Published",
    DraftState.FAILED: "Publishing failed",
    DraftState.WITHDRAWN: "Withdrawn",
}

_D = DraftState
# Editing an in-review, approved or scheduled draft is allowed: it makes a new revision and
# resets the chain (the draft goes back to editing).
DRAFT_EDITABLE: Final = frozenset(
    {_D.EDITING, _D.IN_REVIEW, _D.REJECTED, _D.APPROVED, _D.SCHEDULED, _D.FAILED, _D.FROZEN}
)
DRAFT_TRANSITIONS: Final[dict[DraftState, frozenset[DraftState]]] = {
    _D.EDITING: frozenset({_D.EDITING, _D.IN_REVIEW, _D.WITHDRAWN}),
    _D.IN_REVIEW: frozenset({_D.EDITING, _D.APPROVED, _D.REJECTED, _D.WITHDRAWN}),
    _D.REJECTED: frozenset({_D.EDITING, _D.WITHDRAWN}),
    _D.APPROVED: frozenset({_D.EDITING, _D.SCHEDULED, _D.FROZEN, _D.WITHDRAWN}),
    _D.SCHEDULED: frozenset({_D.EDITING, _D.PUBLISHING, _D.FROZEN, _D.WITHDRAWN}),
    _D.FROZEN: frozenset({_D.EDITING, _D.SCHEDULED, _D.WITHDRAWN}),
    _D.PUBLISHING: frozenset({_D.PUBLISHED, _D.FAILED, _D.SCHEDULED}),
    _D.PUBLISHED: frozenset(),
    _D.FAILED: frozenset({_D.EDITING, _D.SCHEDULED, _D.WITHDRAWN}),
    _D.WITHDRAWN: frozenset(),
}


class PublicationState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    PUBLISHED = "published"
    FAILED = "failed"
    FROZEN = "frozen"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return PUBLICATION_LABELS[self]


PUBLICATION_LABELS: Final = {
    PublicationState.QUEUED: "Queued",
    PublicationState.SENDING: "Sending",
    PublicationState.PUBLISHED: "Published",
    PublicationState.FAILED: "Failed",
    PublicationState.FROZEN: "Frozen",
    PublicationState.CANCELLED: "Cancelled",
}

_P = PublicationState
PUBLICATION_TRANSITIONS: Final[dict[PublicationState, frozenset[PublicationState]]] = {
    _P.QUEUED: frozenset({_P.SENDING, _P.FROZEN, _P.CANCELLED, _P.FAILED}),
    _P.SENDING: frozenset({_P.PUBLISHED, _P.FAILED, _P.QUEUED}),
    _P.PUBLISHED: frozenset(),
    _P.FAILED: frozenset({_P.QUEUED, _P.CANCELLED}),
    _P.FROZEN: frozenset({_P.QUEUED, _P.CANCELLED}),
    _P.CANCELLED: frozenset(),
}


class SettleOutcome(StrEnum):
    """What a person who checked the network decides about a publication of unknown fate."""

    PUBLISHED = "published"
    NOT_PUBLISHED = "not_published"

    @property
    def label(self) -> str:
        return SETTLE_LABELS[self]


SETTLE_LABELS: Final = {
    SettleOutcome.PUBLISHED: "It is on the network",
    SettleOutcome.NOT_PUBLISHED: "It is not on the network",
}

#: The only state a publication is settled from, and where each outcome takes it. ``failed``
#: rather than ``queued`` for "not on the network": nothing goes out again without its author
#: deciding to (Retry, which re-checks the approval and any freeze) after a person said so.
SETTLE_FROM: Final = PublicationState.SENDING
SETTLE_TARGETS: Final[dict[SettleOutcome, PublicationState]] = {
    SettleOutcome.PUBLISHED: PublicationState.PUBLISHED,
    SettleOutcome.NOT_PUBLISHED: PublicationState.FAILED,
}

_E = TypeVar("_E", bound=StrEnum)


def _check(what: str, table: dict[_E, frozenset[_E]], current: _E, target: _E) -> None:
    if target not in table[current]:
        raise IllegalTransition(what, current.value, target.value)


def check_request(current: RequestState | str, target: RequestState | str) -> None:
    _check("approval request", REQUEST_TRANSITIONS, RequestState(current), RequestState(target))


def check_draft(current: DraftState | str, target: DraftState | str) -> None:
    _check("draft", DRAFT_TRANSITIONS, DraftState(current), DraftState(target))


def check_publication(current: PublicationState | str, target: PublicationState | str) -> None:
    _check(
        "publication", PUBLICATION_TRANSITIONS, PublicationState(current), PublicationState(target)
    )


def settle_target(
    current: PublicationState | str, outcome: SettleOutcome | str
) -> PublicationState:
    """Where settling a publication in ``current`` with ``outcome`` takes it; raises
    :class:`IllegalTransition` unless it is the declared settle from ``sending``."""
    target = SETTLE_TARGETS[SettleOutcome(outcome)]
    if PublicationState(current) != SETTLE_FROM:
        raise IllegalTransition("publication", str(current), target.value)
    check_publication(current, target)
    return target
