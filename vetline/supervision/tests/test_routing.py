from __future__ import annotations

from vetline.supervision.routing import PopulationSpec, RecordFacts, Route, route

FACTS = RecordFacts(
    account_id=1,
    business_unit="Wealth",
    owner_id=7,
    network="x",
    direction="outbound",
    record_class="business_communication",
)


def test_population_who_is_a_union_and_what_narrows() -> None:
    assert PopulationSpec().matches(FACTS)
    assert PopulationSpec(account_ids=frozenset({1})).matches(FACTS)
    assert PopulationSpec(owner_ids=frozenset({7})).matches(FACTS)
    assert PopulationSpec(business_units=frozenset({"Wealth"})).matches(FACTS)
    assert not PopulationSpec(account_ids=frozenset({2})).matches(FACTS)
    assert PopulationSpec(account_ids=frozenset({2}), owner_ids=frozenset({7})).matches(FACTS)
    assert not PopulationSpec(directions=frozenset({"inbound"})).matches(FACTS)
    assert not PopulationSpec(networks=frozenset({"linkedin"})).matches(FACTS)
    assert not PopulationSpec(record_classes=frozenset({"other"})).matches(FACTS)


def test_first_matching_rule_by_priority_wins_else_default() -> None:
    routes = [
        Route(rule_pk=1, priority=50, queue_id=10, business_unit="Wealth"),
        Route(rule_pk=2, priority=10, queue_id=20, policy_rule_id="promissory"),
        Route(rule_pk=3, priority=5, queue_id=30, min_severity=4),
    ]
    assert route(
        FACTS, severity=3, rule_ids=["promissory"], routes=routes, default_queue_id=99
    ) == (
        20,
        2,
    )
    assert route(FACTS, severity=4, rule_ids=["x"], routes=routes, default_queue_id=99) == (30, 3)
    assert route(FACTS, severity=2, rule_ids=["x"], routes=routes, default_queue_id=99) == (10, 1)
    other = RecordFacts(2, "Retail", 8, "x", "inbound", "business_communication")
    assert route(other, severity=2, rule_ids=[], routes=routes, default_queue_id=99) == (99, None)


def test_population_route() -> None:
    routes = [
        Route(
            rule_pk=1, priority=1, queue_id=5, population=PopulationSpec(owner_ids=frozenset({7}))
        )
    ]
    assert route(FACTS, severity=2, rule_ids=[], routes=routes, default_queue_id=1) == (5, 1)
