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


# --- Streaming capture ---------------------------------------------------------------------------
#
#   (none) ──► streaming ◄──► reconnecting ──► polling ──► streaming   (stream retried)
#                  │               │              │
#                  └───────────────┴──────────────┴──► stopped (supervisor shut down, access lost)
#
# What the stream supervisor (``vetline stream``) is doing for one account. ``polling`` is the
# fallback when the network's stream cannot be reached: the supervisor captures the account by
# polling until the stream answers again.


class StreamState(StrEnum):
    NONE = ""
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    POLLING = "polling"
    STOPPED = "stopped"

    @property
    def label(self) -> str:
        return STREAM_LABELS[self]


STREAM_LABELS: Final = {
    StreamState.NONE: "Not streamed (scheduled capture)",
    StreamState.STREAMING: "Streaming",
    StreamState.RECONNECTING: "Reconnecting",
    StreamState.POLLING: "Polling (stream unavailable)",
    StreamState.STOPPED: "Stream stopped",
}

_T = StreamState
STREAM_TRANSITIONS: Final[dict[StreamState, frozenset[StreamState]]] = {
    _T.NONE: frozenset({_T.STREAMING, _T.RECONNECTING, _T.POLLING, _T.STOPPED}),
    _T.STREAMING: frozenset({_T.RECONNECTING, _T.POLLING, _T.STOPPED}),
    _T.RECONNECTING: frozenset({_T.STREAMING, _T.RECONNECTING, _T.POLLING, _T.STOPPED}),
    _T.POLLING: frozenset({_T.STREAMING, _T.RECONNECTING, _T.STOPPED}),
    _T.STOPPED: frozenset({_T.STREAMING, _T.RECONNECTING, _T.POLLING}),
}


class IllegalStreamTransition(ValueError):
    def __init__(self, current: StreamState, target: StreamState) -> None:
        super().__init__(
            f"A stream cannot go from {current.value or 'none'} to {target.value or 'none'}."
        )
        self.current = current
        self.target = target


def check_stream_transition(current: StreamState | str, target: StreamState | str) -> None:
    current, target = StreamState(current), StreamState(target)
    if target not in STREAM_TRANSITIONS[current]:
        raise IllegalStreamTransition(current, target)
