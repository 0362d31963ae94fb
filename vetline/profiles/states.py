"""The lifecycles of a profile proposal and of a drift review item, declared in one place (plain
Python, no ORM).

A proposal (one per registered account)::

    draft ──► submitted ──► approved
      ▲  ▲        │    └──► rejected ──► draft (edited) / submitted (resubmitted as is)
      │  └────────┘ (edited or withdrawn while waiting)
      └──────────────────── approved (edited after approval: the chain starts again)

Every edit is a new revision and puts the proposal back in ``draft``: an approval is pinned to
the exact revision it approved and never carries over to an edit. The approved revision stays
recorded (it is what the live profile is compared with) until a newer one is approved.

A drift item::

    open ──► acknowledged ──► resolved
      └───────────────────────┘

An undeclared transition raises :class:`IllegalTransition`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class ProposalState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        return PROPOSAL_LABELS[self]


PROPOSAL_LABELS: Final = {
    ProposalState.DRAFT: "Draft (not submitted)",
    ProposalState.SUBMITTED: "Waiting for compliance",
    ProposalState.APPROVED: "Approved",
    ProposalState.REJECTED: "Returned with comments",
}

_P = ProposalState
PROPOSAL_TRANSITIONS: Final[dict[ProposalState, frozenset[ProposalState]]] = {
    _P.DRAFT: frozenset({_P.DRAFT, _P.SUBMITTED}),
    _P.SUBMITTED: frozenset({_P.APPROVED, _P.REJECTED, _P.DRAFT}),
    _P.APPROVED: frozenset({_P.DRAFT}),
    _P.REJECTED: frozenset({_P.DRAFT, _P.SUBMITTED}),
}


class DriftState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"

    @property
    def label(self) -> str:
        return DRIFT_LABELS[self]


DRIFT_LABELS: Final = {
    DriftState.OPEN: "Open",
    DriftState.ACKNOWLEDGED: "Acknowledged",
    DriftState.RESOLVED: "Resolved",
}

_D = DriftState
DRIFT_TRANSITIONS: Final[dict[DriftState, frozenset[DriftState]]] = {
    _D.OPEN: frozenset({_D.ACKNOWLEDGED, _D.RESOLVED}),
    _D.ACKNOWLEDGED: frozenset({_D.RESOLVED}),
    _D.RESOLVED: frozenset(),
}

#: Drift items that still need someone: at most one per account.
DRIFT_ACTIVE: Final = frozenset({DriftState.OPEN, DriftState.ACKNOWLEDGED})


class IllegalTransition(ValueError):
    def __init__(self, what: str, current: str, target: str) -> None:
        super().__init__(f"A {what} cannot go from {current} to {target}.")
        self.current = current
        self.target = target


def check_proposal_transition(current: ProposalState | str, target: ProposalState | str) -> None:
    current, target = ProposalState(current), ProposalState(target)
    if target not in PROPOSAL_TRANSITIONS[current]:
        raise IllegalTransition("profile proposal", current.value, target.value)


def check_drift_transition(current: DriftState | str, target: DriftState | str) -> None:
    current, target = DriftState(current), DriftState(target)
    if target not in DRIFT_TRANSITIONS[current]:
        raise IllegalTransition("drift item", current.value, target.value)
