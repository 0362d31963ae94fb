"""The lifecycle of a connection, declared in one place (plain Python, no ORM).

::

    pending ──► connected ──► expired ──► connected   (token refreshed)
       ▲            │    ├──► revoked      │
       │            │    ├──► error ───────┘ (next capture succeeds)
       │            ▼    └──► disconnected (an administrator or the owner disconnected)
       └──── expired / revoked / error / disconnected  (reconnection started)

Capture runs only in ``connected``. ``expired``, ``revoked`` and ``error`` mean capture has
stopped and raise an alert. An undeclared transition raises :class:`IllegalTransition`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class ConnectionState(StrEnum):
    PENDING = "pending"
    CONNECTED = "connected"
    EXPIRED = "expired"
    REVOKED = "revoked"
    ERROR = "error"
    DISCONNECTED = "disconnected"

    @property
    def label(self) -> str:
        return STATE_LABELS[self]

    @property
    def capture_stopped(self) -> bool:
        return self in CAPTURE_STOPPED


STATE_LABELS: Final = {
    ConnectionState.PENDING: "Waiting for the account holder",
    ConnectionState.CONNECTED: "Connected",
    ConnectionState.EXPIRED: "Access expired",
    ConnectionState.REVOKED: "Access revoked",
    ConnectionState.ERROR: "Capture failing",
    ConnectionState.DISCONNECTED: "Disconnected",
}

CAPTURE_STOPPED: Final = frozenset(
    {ConnectionState.EXPIRED, ConnectionState.REVOKED, ConnectionState.ERROR}
)

_S = ConnectionState
TRANSITIONS: Final[dict[ConnectionState, frozenset[ConnectionState]]] = {
    _S.PENDING: frozenset({_S.PENDING, _S.CONNECTED, _S.DISCONNECTED}),
    _S.CONNECTED: frozenset({_S.CONNECTED, _S.EXPIRED, _S.REVOKED, _S.ERROR, _S.DISCONNECTED}),
    _S.EXPIRED: frozenset({_S.CONNECTED, _S.PENDING, _S.REVOKED, _S.DISCONNECTED}),
    _S.REVOKED: frozenset({_S.PENDING, _S.DISCONNECTED}),
    _S.ERROR: frozenset(
        {_S.CONNECTED, _S.ERROR, _S.EXPIRED, _S.REVOKED, _S.PENDING, _S.DISCONNECTED}
    ),
    _S.DISCONNECTED: frozenset({_S.PENDING}),
}


class IllegalTransition(ValueError):
    def __init__(self, current: ConnectionState, target: ConnectionState) -> None:
        super().__init__(f"A connection cannot go from {current.value} to {target.value}.")
        self.current = current
        self.target = target


def check_transition(current: ConnectionState | str, target: ConnectionState | str) -> None:
    current, target = ConnectionState(current), ConnectionState(target)
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)
