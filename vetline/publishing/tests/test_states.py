"""The declared settle transitions of a publication (pure: no database)."""

from __future__ import annotations

import pytest

from vetline.publishing.states import (
    IllegalTransition,
    PublicationState,
    SettleOutcome,
    settle_target,
)


def test_settling_goes_only_from_sending_to_its_declared_target() -> None:
    assert settle_target("sending", "published") == PublicationState.PUBLISHED
    assert settle_target(PublicationState.SENDING, SettleOutcome.NOT_PUBLISHED) == (
        PublicationState.FAILED
    )
    for state in PublicationState:
        if state == PublicationState.SENDING:
            continue
        for outcome in SettleOutcome:
            with pytest.raises(IllegalTransition):
                settle_target(state, outcome)
    with pytest.raises(ValueError):
        settle_target("sending", "maybe")
