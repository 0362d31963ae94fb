from __future__ import annotations

import pytest

from vetline.connectors.states import (
    TRANSITIONS,
    ConnectionState,
    IllegalTransition,
    check_transition,
)


def test_every_state_is_declared() -> None:
    assert set(TRANSITIONS) == set(ConnectionState)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("pending", "connected"),
        ("connected", "expired"),
        ("connected", "revoked"),
        ("connected", "error"),
        ("expired", "connected"),
        ("error", "connected"),
        ("revoked", "pending"),
        ("disconnected", "pending"),
    ],
)
def test_declared_transitions(current: str, target: str) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [("pending", "revoked"), ("revoked", "connected"), ("disconnected", "connected")],
)
def test_undeclared_transition_raises(current: str, target: str) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(current, target)


def test_capture_stopped_states() -> None:
    assert ConnectionState.REVOKED.capture_stopped and ConnectionState.EXPIRED.capture_stopped
    assert not ConnectionState.CONNECTED.capture_stopped
