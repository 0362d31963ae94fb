from __future__ import annotations

import pytest

from vetline.profiles.states import (
    DRIFT_TRANSITIONS,
    PROPOSAL_TRANSITIONS,
    DriftState,
    IllegalTransition,
    ProposalState,
    check_drift_transition,
    check_proposal_transition,
)


def test_every_state_is_declared() -> None:
    assert set(PROPOSAL_TRANSITIONS) == set(ProposalState)
    assert set(DRIFT_TRANSITIONS) == set(DriftState)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("draft", "approved"),  # nothing is approved without being submitted
        ("draft", "rejected"),
        ("approved", "submitted"),  # an approved profile is edited first (a new revision)
        ("approved", "rejected"),
        ("rejected", "approved"),
    ],
)
def test_undeclared_proposal_transitions_raise(current: str, target: str) -> None:
    with pytest.raises(IllegalTransition):
        check_proposal_transition(current, target)


def test_declared_proposal_path() -> None:
    for current, target in (
        ("draft", "submitted"),
        ("submitted", "approved"),
        ("approved", "draft"),
        ("submitted", "rejected"),
        ("rejected", "submitted"),
        ("submitted", "draft"),
    ):
        check_proposal_transition(current, target)


def test_resolved_drift_is_final() -> None:
    check_drift_transition("open", "acknowledged")
    check_drift_transition("acknowledged", "resolved")
    for target in DriftState:
        with pytest.raises(IllegalTransition):
            check_drift_transition("resolved", target)
    with pytest.raises(IllegalTransition):
        check_drift_transition("acknowledged", "open")
