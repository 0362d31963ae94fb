"""The supervision part of the demo organisation: a compliance queue at the top of the
escalation chain, the Wealth Management population and its queue (the branch supervisor), a
weekly statistical spot-check, and the flags of what the demo has archived so far. Idempotent:
a second load creates nothing."""

from __future__ import annotations

from vetline.identity.models import Person
from vetline.supervision import actions
from vetline.supervision.models import Population, ReviewQueue, SamplingPlan

COMPLIANCE_EMAIL = "compliance@harborpoint.example"
SUPERVISOR_EMAIL = "supervisor@harborpoint.example"


def load_supervision_demo() -> dict[str, int]:
    created = {"supervision_queues": 0, "supervision_plans": 0}
    co = Person.objects.filter(email=COMPLIANCE_EMAIL).first()
    sup = Person.objects.filter(email=SUPERVISOR_EMAIL).first()
    if co is None or sup is None:
        return created
    compliance = ReviewQueue.objects.filter(name="Compliance").first()
    if compliance is None:
        compliance = actions.create_queue(actor=co, name="Compliance", reviewers=[co], sla_days=3)
        created["supervision_queues"] += 1
    population = Population.objects.filter(name="Wealth Management").first()
    if population is None:
        population = actions.create_population(
            actor=co,
            name="Wealth Management",
            description="Every account of the Wealth Management business unit.",
            business_units=["Wealth Management"],
        )
    wealth = ReviewQueue.objects.filter(name="Wealth Management review").first()
    if wealth is None:
        wealth = actions.create_queue(
            actor=co,
            name="Wealth Management review",
            population=population,
            reviewers=[sup],
            escalate_to=compliance,
            is_default=not ReviewQueue.objects.filter(is_default=True).exists(),
        )
        actions.create_routing_rule(actor=co, queue=wealth, population=population, priority=10)
        created["supervision_queues"] += 1
    if not SamplingPlan.objects.filter(name="Wealth weekly spot-check").exists():
        actions.create_sampling_plan(
            actor=co,
            name="Wealth weekly spot-check",
            population=population,
            queue=wealth,
            period="weekly",
            method="fixed_rate",
            fixed_rate_percent="10",
            confidence="0.95",
        )
        created["supervision_plans"] += 1
    actions.process_new_records()
    return created
