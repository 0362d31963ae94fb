"""Which queue a flagged or sampled record goes to, and whether a record belongs to a
population. Plain Python, no ORM: the facts of a record and the rules are plain values.

A routing rule matches when every condition it sets holds (an empty condition matches
anything): the account's business unit, membership of a population (an account group), a rule
that fired, a minimum severity. Rules are tried by ascending priority, then id; the first match
wins. No match: the default queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """What routing and population membership look at, for one archived record."""

    account_id: int
    business_unit: str
    owner_id: int
    network: str
    direction: str
    record_class: str


@dataclass(frozen=True, slots=True)
class PopulationSpec:
    """Who and what a population covers. Empty sets mean "any". The who-part (accounts,
    people owning accounts, business units) is a union; the what-part (record classes,
    directions, networks) narrows it."""

    account_ids: frozenset[int] = frozenset()
    owner_ids: frozenset[int] = frozenset()
    business_units: frozenset[str] = frozenset()
    record_classes: frozenset[str] = frozenset()
    directions: frozenset[str] = frozenset()
    networks: frozenset[str] = frozenset()

    @property
    def selects_everyone(self) -> bool:
        return not (self.account_ids or self.owner_ids or self.business_units)

    def matches(self, facts: RecordFacts) -> bool:
        if not self.selects_everyone and not (
            facts.account_id in self.account_ids
            or facts.owner_id in self.owner_ids
            or (facts.business_unit and facts.business_unit in self.business_units)
        ):
            return False
        if self.record_classes and facts.record_class not in self.record_classes:
            return False
        if self.directions and facts.direction not in self.directions:
            return False
        return not (self.networks and facts.network not in self.networks)


@dataclass(frozen=True, slots=True)
class Route:
    """One routing rule, as plain values."""

    rule_pk: int
    priority: int
    queue_id: int
    business_unit: str = ""
    population: PopulationSpec | None = None
    policy_rule_id: str = ""
    min_severity: int = 0  # 0: any; else a vetline.policy Severity value
    tags: tuple[str, ...] = field(default=())

    def matches(self, facts: RecordFacts, severity: int, rule_ids: Iterable[str]) -> bool:
        if self.business_unit and facts.business_unit != self.business_unit:
            return False
        if self.population is not None and not self.population.matches(facts):
            return False
        if self.policy_rule_id and self.policy_rule_id not in set(rule_ids):
            return False
        return not (self.min_severity and severity < self.min_severity)


def route(
    facts: RecordFacts,
    *,
    severity: int,
    rule_ids: Iterable[str],
    routes: Sequence[Route],
    default_queue_id: int,
) -> tuple[int, int | None]:
    """The queue for a record, and the routing rule that chose it (None: the default)."""
    ids = tuple(rule_ids)
    for r in sorted(routes, key=lambda r: (r.priority, r.rule_pk)):
        if r.matches(facts, severity, ids):
            return r.queue_id, r.rule_pk
    return default_queue_id, None
