"""Sampling plans as the desk runs them: validation, nothing-to-sample, reproducible draws,
no double queuing, once per period, the achieved upper deviation limit after review."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from vetline.archive.models import ArchivedRecord
from vetline.audit.models import AuditEvent
from vetline.core.errors import Forbidden, ValidationFailed
from vetline.supervision import actions, draw, metrics, sampling
from vetline.supervision.models import ReviewItem, SampleStatus

pytestmark = pytest.mark.django_db


def plan(desk: Any, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "actor": desk.co,
        "name": "Weekly X",
        "population": desk.pop_a,
        "queue": desk.queue_a,
        "period": "daily",
        "method": "fixed_rate",
        "fixed_rate_percent": "100",
        "confidence": "0.95",
    }
    args.update(kw)
    return actions.create_sampling_plan(**args)


@pytest.mark.parametrize(
    ("kw", "field", "words"),
    [
        (
            {
                "method": "statistical",
                "confidence": "1.2",
                "tolerable_rate": "0.05",
                "expected_rate": "0.01",
            },
            "confidence",
            "confidence",
        ),
        (
            {
                "method": "statistical",
                "confidence": "0.95",
                "tolerable_rate": "0.05",
                "expected_rate": "0.05",
            },
            "expected_rate",
            "expected",
        ),
        (
            {"method": "statistical", "confidence": "0.95", "tolerable_rate": None},
            "tolerable_rate",
            "tolerable",
        ),
        ({"fixed_rate_percent": "0"}, "fixed_rate_percent", "rate"),
        ({"fixed_rate_percent": "abc"}, "fixed_rate_percent", "number"),
        ({"period": "hourly"}, "period", "daily"),
    ],
)
def test_impossible_plans_are_rejected_with_what_to_change(
    desk: Any, kw: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        plan(desk, **kw)
    assert exc.value.field == field
    assert words in exc.value.message.lower()


def test_only_managers_make_plans(desk: Any) -> None:
    with pytest.raises(Forbidden):
        plan(desk, actor=desk.sup)


def test_zero_population_is_recorded_as_nothing_to_sample(desk: Any) -> None:
    p = plan(desk)
    run = actions.run_sampling_plan(actor=None, plan=p, day=dt.date(2001, 1, 1))
    assert run.status == SampleStatus.NOTHING_TO_SAMPLE
    assert run.population_size == 0 and "Nothing to sample" in run.note
    assert AuditEvent.objects.filter(
        action="supervision.sample.run", object_id=str(run.pk)
    ).exists()


def test_a_sample_larger_than_the_population_is_a_failed_run_that_says_why(desk: Any) -> None:
    p = plan(
        desk,
        method="statistical",
        fixed_rate_percent=None,
        confidence="0.95",
        tolerable_rate="0.05",
        expected_rate="0.01",
    )
    run = actions.run_sampling_plan(actor=desk.co, plan=p, day=timezone.now().date())
    assert run.status == SampleStatus.FAILED
    assert run.population_size == 3 and "population" in run.note.lower()
    assert not ReviewItem.objects.filter(source="sample").exists()


def test_draw_is_reproducible_and_flags_are_counted_not_requeued(desk: Any) -> None:
    p = plan(desk)
    today = timezone.now().date()
    run = actions.run_sampling_plan(actor=desk.co, plan=p, day=today)
    assert run.status == SampleStatus.DRAWN and run.population_size == 3
    assert run.sample_size == 3 and len(run.seed) == 64
    population = sorted(
        ArchivedRecord.objects.filter(account=desk.world.corporate).values_list("pk", flat=True)
    )
    assert run.population_sha256 == draw.population_sha256(population)
    again = draw.draw_sample(population, sample_size=run.sample_size, seed=run.seed)
    assert list(again.ids) == run.drawn_record_ids
    # a1 was flagged already: in the sample, not queued a second time.
    assert run.already_queued == 1 and run.new_items == 2
    assert ReviewItem.objects.filter(record_id=desk.records["a1"]).count() == 1
    assert set(ReviewItem.objects.filter(sample_run=run).values_list("record_id", flat=True)) == {
        desk.records["a2"],
        desk.records["a3"],
    }
    # Once per period.
    assert actions.run_sampling_plan(actor=desk.co, plan=p, day=today).pk == run.pk


def test_upper_deviation_limit_after_review(desk: Any) -> None:
    p = plan(desk, confidence="0.9")
    run = actions.run_sampling_plan(actor=desk.co, plan=p, day=timezone.now().date())
    outcome = metrics.sample_outcome(run)
    assert outcome.upper_limit is None and outcome.reviewed == 0
    for item in ReviewItem.objects.filter(record_id__in=run.drawn_record_ids):
        item = actions.claim_item(actor=desk.sup, item=item)
        violation = item.record_id == desk.records["a1"]
        actions.dispose_item(
            actor=desk.sup,
            item=item,
            disposition="violation_coached" if violation else "no_issue",
            comment="Coached." if violation else "",
        )
    outcome = metrics.sample_outcome(run)
    assert outcome.reviewed == 3 and outcome.deviations == 1
    expected = sampling.upper_deviation_limit(
        sample_size=3, deviations=1, confidence=Decimal("0.9")
    )
    assert outcome.upper_limit == expected and Decimal(0) < expected < Decimal(1)


def test_scheduled_runs_take_the_last_complete_period(desk: Any) -> None:
    p = plan(desk)
    today = timezone.now().date()
    runs = actions.run_due_plans(today=today + dt.timedelta(days=1))
    assert [r.plan_id for r in runs] == [p.pk]
    assert runs[0].period_start.date() == today and runs[0].trigger == "schedule"
    assert actions.run_due_plans(today=today + dt.timedelta(days=1))[0].pk == runs[0].pk
