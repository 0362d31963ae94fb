"""Fixtures of the supervision tests: a policy, two populations with their queues and
reviewers, an escalation chain to compliance officers, and archived records flagged by the
real ingest and the real flag follower."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from vetline.identity.roles import Role

POLICY = """name: supervision-test
rules:
  - id: promissory
    kind: lexicon
    severity: escalate
    explanation: Promises of returns are not allowed.
    terms: [guarantee, guaranteed]
  - id: lunch
    kind: lexicon
    severity: info
    explanation: Harmless.
    terms: [lunch]
"""


@dataclass
class Desk:
    world: Any
    co: Any
    sup: Any
    sup2: Any
    policy: Any
    pop_a: Any
    pop_b: Any
    queue_a: Any
    queue_b: Any
    compliance: Any
    records: dict[str, int] = field(default_factory=dict)


def ingest(account: Any, items: list[dict[str, Any]]) -> list[int]:
    from vetline.archive.actions import ingest_batch

    report = ingest_batch(items=items, account=account, source="test", actor=None)
    return [i.record_id for i in report.items if i.record_id]


@pytest.fixture
def desk(world: Any, make_person: Any) -> Desk:
    from vetline.policy.actions import create_policy
    from vetline.supervision import actions

    co = world.people[Role.COMPLIANCE_OFFICER]
    sup = world.people[Role.SUPERVISOR]
    sup2 = make_person(Role.SUPERVISOR, "sup2@example.com", full_name="Second Supervisor")
    policy = create_policy(actor=co, spec_yaml=POLICY)
    pop_a = actions.create_population(actor=co, name="Corporate X", accounts=[world.corporate])
    pop_b = actions.create_population(actor=co, name="LinkedIn corp", accounts=[world.other])
    compliance = actions.create_queue(actor=co, name="Compliance", reviewers=[co])
    queue_a = actions.create_queue(
        actor=co,
        name="Queue A",
        population=pop_a,
        reviewers=[sup],
        escalate_to=compliance,
        is_default=True,
    )
    queue_b = actions.create_queue(actor=co, name="Queue B", population=pop_b, reviewers=[sup2])
    actions.create_routing_rule(actor=co, queue=queue_b, population=pop_b, priority=10)
    d = Desk(world, co, sup, sup2, policy, pop_a, pop_b, queue_a, queue_b, compliance)
    a = ingest(
        world.corporate,
        [
            {
                "remote_id": "a1",
                "kind": "post",
                "direction": "outbound",
                "text": "We guarantee 10% returns!",
                "conversation_id": "conv-a",
            },
            {
                "remote_id": "a2",
                "kind": "reply",
                "direction": "inbound",
                "text": "Nice lunch today",
                "conversation_id": "conv-a",
            },
            {"remote_id": "a3", "kind": "post", "direction": "outbound", "text": "Plain news"},
        ],
    )
    b = ingest(
        world.other,
        [{"remote_id": "b1", "kind": "post", "direction": "outbound", "text": "Guaranteed gains"}],
    )
    d.records = {"a1": a[0], "a2": a[1], "a3": a[2], "b1": b[0]}
    actions.process_new_records()
    return d
