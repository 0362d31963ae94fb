from __future__ import annotations

import pytest

from vetline.supervision.states import (
    TRANSITIONS,
    Disposition,
    IllegalTransition,
    ReviewState,
    check_transition,
    state_after,
)


def test_every_state_is_declared() -> None:
    assert set(TRANSITIONS) == set(ReviewState)


@pytest.mark.parametrize("current", list(ReviewState))
@pytest.mark.parametrize("target", list(ReviewState))
def test_only_declared_transitions_pass(current: ReviewState, target: ReviewState) -> None:
    if target in TRANSITIONS[current]:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(current, target)


def test_closed_is_final_and_escalated_waits_for_a_claim() -> None:
    assert TRANSITIONS[ReviewState.CLOSED] == frozenset()
    assert TRANSITIONS[ReviewState.ESCALATED] == frozenset({ReviewState.CLAIMED})


def test_dispositions() -> None:
    assert not Disposition.NO_ISSUE.needs_comment
    assert all(d.needs_comment for d in Disposition if d is not Disposition.NO_ISSUE)
    assert state_after(Disposition.NEEDS_INFO, top_of_chain=False) is ReviewState.NEEDS_INFO
    assert state_after(Disposition.VIOLATION_ESCALATED, top_of_chain=False) is (
        ReviewState.ESCALATED
    )
    assert state_after(Disposition.VIOLATION_ESCALATED, top_of_chain=True) is ReviewState.CLOSED
    assert state_after(Disposition.FALSE_POSITIVE, top_of_chain=False) is ReviewState.CLOSED
