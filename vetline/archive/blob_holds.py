"""What the blob store's legal holds should become, given what the active legal holds want and
what Vetline last recorded (pure logic, no ORM: the reconciliation in
:mod:`vetline.archive.retention_actions` feeds it rows and applies its answer).

A blob is *wanted* on hold while any active legal hold covers a record referring to it. Each
recorded blob has a store state: ``off``, ``on`` (confirmed, in a named store) or ``pending``
(a change was asked for and its answer not recorded: a crash, or a failure). The store is asked
to change a blob when:

* it is ``pending``: whatever happened, the wanted state is asserted again (idempotent);
* it is wanted and not confirmed ``on`` in the store in use (a new hold, or a new store);
* it is not wanted and still ``on``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

OFF: Final = "off"
ON: Final = "on"
PENDING: Final = "pending"

_HEX64: Final = re.compile(r"[0-9a-f]{64}")


def blob_names(attachments: object) -> Iterable[str]:
    """The blob names in a record's attachment list (anything else is ignored)."""
    if not isinstance(attachments, list):
        return ()
    return (a for a in attachments if isinstance(a, str) and _HEX64.fullmatch(a))


def wanted_change(*, wanted: bool, state: str, row_store: str, store: str) -> bool | None:
    """The legal hold to ask the store for (True on, False off), or None when nothing is to
    be done for this blob."""
    if state == PENDING:
        return wanted
    if wanted:
        return None if state == ON and row_store == store else True
    return False if state == ON else None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the table says about one blob."""

    wanted: bool
    holds: frozenset[int]


@dataclass
class Plan:
    """The table changes that make the recorded wanted set equal the computed one."""

    create: dict[str, frozenset[int]] = field(default_factory=dict)  # new rows, wanted
    rewant: list[str] = field(default_factory=list)  # recorded, not wanted, wanted again
    unwant: list[str] = field(default_factory=list)  # wanted, no active hold covers it now
    links_add: set[tuple[str, int]] = field(default_factory=set)  # (blob, hold)
    links_remove: set[tuple[str, int]] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not (
            self.create or self.rewant or self.unwant or self.links_add or self.links_remove
        )

    def counts(self) -> dict[str, int]:
        return {
            "created": len(self.create),
            "wanted_again": len(self.rewant),
            "no_longer_wanted": len(self.unwant),
            "links_added": len(self.links_add),
            "links_removed": len(self.links_remove),
        }


def plan(wanted: Mapping[str, Iterable[int]], recorded: Mapping[str, Recorded]) -> Plan:
    """Compare ``wanted`` (blob → the active holds covering it) with ``recorded`` (every blob
    the table knows that is wanted or linked to a hold, plus any wanted blob it knows at all)."""
    out = Plan()
    for name, hold_ids in wanted.items():
        holds = frozenset(hold_ids)
        row = recorded.get(name)
        if row is None:
            out.create[name] = holds
            out.links_add |= {(name, h) for h in holds}
            continue
        if not row.wanted:
            out.rewant.append(name)
        out.links_add |= {(name, h) for h in holds - row.holds}
        out.links_remove |= {(name, h) for h in row.holds - holds}
    for name, row in recorded.items():
        if name in wanted:
            continue
        if row.wanted:
            out.unwant.append(name)
        out.links_remove |= {(name, h) for h in row.holds}
    out.rewant.sort()
    out.unwant.sort()
    return out
