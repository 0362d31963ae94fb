"""Writes of the supervision desk: settings, populations, queues and routing; flags (following
new archived records by cursor, and retroactive runs of a policy version); review (open,
claim, assign, release, dispositions, bulk false positives) with evidence of review; sampling
plans and their runs; inspection; the periodic supervision report.

Every function checks permission (``actor`` None is the system: the flag follower and the
scheduled jobs), runs in a transaction and writes its audit event in it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from vetline.archive.models import ArchivedRecord, ScreeningVerdict
from vetline.audit.actions import record as audit
from vetline.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from vetline.identity.permissions import require, require_any
from vetline.identity.roles import Perm
from vetline.supervision import selectors
from vetline.supervision.models import (
    DigestPreference,
    ItemSource,
    Period,
    Population,
    RetroRun,
    ReviewAction,
    ReviewActionKind,
    ReviewItem,
    ReviewQueue,
    RoutingRule,
    RunState,
    SampleRun,
    SampleStatus,
    SamplingMethod,
    SamplingPlan,
    Severity,
    SupervisionSettings,
)
from vetline.supervision.routing import route
from vetline.supervision.states import (
    Disposition,
    IllegalTransition,
    ReviewState,
    check_transition,
    state_after,
)

if TYPE_CHECKING:
    from vetline.accounts.models import SocialAccount
    from vetline.identity.models import Person
    from vetline.policy.models import Policy, PolicyVersion

logger = logging.getLogger(__name__)

FLAG_BATCH: Final = 500
MAX_REVIEW_SECONDS: Final = 4 * 3600  # an open item left in a tab is not hours of review
MAX_BULK: Final = 500
MAX_COMMENT: Final = 5000
SEVERITY_LABELS: Final = {"info": 1, "warn": 2, "escalate": 3, "block": 4}
SCREENING_ERROR_RULE: Final = "screening_error"


def _transition(item: ReviewItem, target: ReviewState) -> None:
    try:
        check_transition(item.state, target)
    except IllegalTransition as exc:
        raise Conflict(str(exc), code="illegal_transition") from exc
    item.state = target


def _names(values: Iterable[str], *, field: str, limit: int = 50) -> list[str]:
    out = sorted({v.strip() for v in values if v and v.strip()})
    if len(out) > limit:
        raise ValidationFailed(f"At most {limit} values.", field=field)
    for v in out:
        if len(v) > 120:
            raise ValidationFailed("Each value is at most 120 characters.", field=field)
    return out


# --- Settings, populations, queues, routing ---------------------------------------------------


def update_settings(
    *,
    actor: Person,
    policy: Policy | None,
    flag_min_severity: int,
    overdue_after_days: int,
) -> SupervisionSettings:
    """Which policy screens for supervision (None: the archive's default policy) and from
    which severity a record becomes a review item."""
    require(actor, Perm.SUPERVISION_MANAGE)
    if flag_min_severity not in Severity.values:
        raise ValidationFailed("Choose info, warn, escalate or block.", field="flag_min_severity")
    if not 1 <= overdue_after_days <= 365:
        raise ValidationFailed("Between 1 and 365 days.", field="overdue_after_days")
    with transaction.atomic():
        row = SupervisionSettings.objects.select_for_update().get(pk=SupervisionSettings.load().pk)
        before = {
            "policy": row.policy.name if row.policy else None,
            "flag_min_severity": row.flag_min_severity,
            "overdue_after_days": row.overdue_after_days,
        }
        row.policy = policy
        row.flag_min_severity = flag_min_severity
        row.overdue_after_days = overdue_after_days
        row.updated_at = timezone.now()
        row.save()
        audit(
            action="supervision.settings.update",
            actor=actor,
            obj=row,
            before=before,
            after={
                "policy": policy.name if policy else None,
                "flag_min_severity": flag_min_severity,
                "overdue_after_days": overdue_after_days,
            },
        )
    return row


def create_population(
    *,
    actor: Person,
    name: str,
    description: str = "",
    accounts: Sequence[SocialAccount] = (),
    people: Sequence[Person] = (),
    business_units: Sequence[str] = (),
    record_classes: Sequence[str] = (),
    directions: Sequence[str] = (),
    networks: Sequence[str] = (),
) -> Population:
    require(actor, Perm.SUPERVISION_MANAGE)
    name = name.strip()
    if not name or len(name) > 120:
        raise ValidationFailed("Name the population (at most 120 characters).", field="name")
    bad_dirs = set(directions) - {"inbound", "outbound"}
    if bad_dirs:
        raise ValidationFailed("Directions are inbound or outbound.", field="directions")
    with transaction.atomic():
        if Population.objects.filter(name=name).exists():
            raise Conflict("A population with that name already exists.", code="duplicate")
        pop = Population.objects.create(
            name=name,
            description=description[:2000],
            business_units=_names(business_units, field="business_units"),
            record_classes=_names(record_classes, field="record_classes"),
            directions=sorted(set(directions)),
            networks=_names(networks, field="networks"),
        )
        pop.accounts.set(accounts)
        pop.people.set(people)
        audit(
            action="supervision.population.create",
            actor=actor,
            obj=pop,
            after={
                "accounts": sorted(a.pk for a in accounts),
                "people": sorted(p.pk for p in people),
                "business_units": pop.business_units,
                "record_classes": pop.record_classes,
                "directions": pop.directions,
                "networks": pop.networks,
            },
        )
    return pop


def create_queue(
    *,
    actor: Person,
    name: str,
    population: Population | None = None,
    reviewers: Sequence[Person] = (),
    escalate_to: ReviewQueue | None = None,
    is_default: bool = False,
    sla_days: int = 5,
) -> ReviewQueue:
    require(actor, Perm.SUPERVISION_MANAGE)
    name = name.strip()
    if not name or len(name) > 120:
        raise ValidationFailed("Name the queue (at most 120 characters).", field="name")
    if not 1 <= sla_days <= 365:
        raise ValidationFailed("Between 1 and 365 days.", field="sla_days")
    for person in reviewers:
        if not person.can(Perm.SUPERVISE):
            raise ValidationFailed(
                f"{person} cannot review: give them the Supervisor role first.", field="reviewers"
            )
    with transaction.atomic():
        if ReviewQueue.objects.filter(name=name).exists():
            raise Conflict("A queue with that name already exists.", code="duplicate")
        if is_default:
            ReviewQueue.objects.filter(is_default=True).update(is_default=False)
        queue = ReviewQueue.objects.create(
            name=name,
            population=population,
            escalate_to=escalate_to,
            is_default=is_default,
            sla_days=sla_days,
        )
        queue.reviewers.set(reviewers)
        audit(
            action="supervision.queue.create",
            actor=actor,
            obj=queue,
            after={
                "population": population.pk if population else None,
                "reviewers": sorted(p.pk for p in reviewers),
                "escalate_to": escalate_to.pk if escalate_to else None,
                "is_default": is_default,
                "sla_days": sla_days,
            },
        )
    return queue


def set_queue_reviewers(
    *, actor: Person, queue: ReviewQueue, reviewers: Sequence[Person]
) -> ReviewQueue:
    require(actor, Perm.SUPERVISION_MANAGE)
    for person in reviewers:
        if not person.can(Perm.SUPERVISE):
            raise ValidationFailed(f"{person} cannot review.", field="reviewers")
    with transaction.atomic():
        before = sorted(queue.reviewers.values_list("pk", flat=True))
        queue.reviewers.set(reviewers)
        audit(
            action="supervision.queue.reviewers",
            actor=actor,
            obj=queue,
            before={"reviewers": before},
            after={"reviewers": sorted(p.pk for p in reviewers)},
        )
    return queue


def create_routing_rule(
    *,
    actor: Person,
    queue: ReviewQueue,
    priority: int = 100,
    business_unit: str = "",
    population: Population | None = None,
    policy_rule_id: str = "",
    min_severity: int | None = None,
) -> RoutingRule:
    require(actor, Perm.SUPERVISION_MANAGE)
    if min_severity is not None and min_severity not in Severity.values:
        raise ValidationFailed("Choose info, warn, escalate or block.", field="min_severity")
    if not 0 <= priority <= 1_000_000:
        raise ValidationFailed("Priority is between 0 and 1,000,000.", field="priority")
    with transaction.atomic():
        rule = RoutingRule.objects.create(
            queue=queue,
            priority=priority,
            business_unit=business_unit.strip()[:120],
            population=population,
            policy_rule_id=policy_rule_id.strip()[:100],
            min_severity=min_severity,
        )
        audit(
            action="supervision.route.create",
            actor=actor,
            obj=rule,
            after={
                "queue": queue.pk,
                "priority": priority,
                "business_unit": rule.business_unit,
                "population": population.pk if population else None,
                "policy_rule_id": rule.policy_rule_id,
                "min_severity": min_severity,
            },
        )
    return rule


def deactivate_routing_rule(*, actor: Person, rule: RoutingRule) -> RoutingRule:
    require(actor, Perm.SUPERVISION_MANAGE)
    with transaction.atomic():
        rule.is_active = False
        rule.save(update_fields=["is_active"])
        audit(action="supervision.route.deactivate", actor=actor, obj=rule)
    return rule


def _default_queue() -> ReviewQueue:
    """The queue of last resort. Created (and audited) the first time it is needed."""
    queue = ReviewQueue.objects.filter(is_default=True).first()
    if queue is None:
        queue, created = ReviewQueue.objects.get_or_create(
            name="General review", defaults={"is_default": True}
        )
        if created:
            audit(
                action="supervision.queue.create",
                actor=None,
                obj=queue,
                after={"is_default": True, "reason": "first flag with no default queue"},
            )
    return queue


# --- Flags --------------------------------------------------------------------------------------


def scope_for(kind: str, direction: str) -> str:
    """The screening scope of an archived record (the same mapping the archive's ingest uses)."""
    if kind == "direct_message":
        return "direct_message"
    if kind == "profile_snapshot":
        return "profile"
    if direction == "inbound":
        return "inbound_comment"
    if kind in ("reply", "comment"):
        return "reply"
    return "outbound_post"


@dataclass(frozen=True, slots=True)
class Finding:
    """What screening said about one record, as supervision keeps it."""

    severity: int  # 0: nothing enforcing fired
    hits: list[dict[str, Any]]
    rule_ids: list[str]
    policy_name: str
    policy_version: int


def _finding_from_hits(hits: list[dict[str, Any]], name: str, version: int) -> Finding:
    enforcing = [h for h in hits if not h.get("draft")]
    severity = max((SEVERITY_LABELS.get(str(h.get("severity")), 0) for h in enforcing), default=0)
    rule_ids = sorted({str(h.get("rule_id", "")) for h in enforcing})
    return Finding(severity, hits, rule_ids, name, version)


def _screen_records(
    records: Sequence[ArchivedRecord], version: PolicyVersion
) -> dict[int, Finding]:
    """Screen records with one pinned policy version. A verdict the archive already holds for
    that exact version is reused; a screening error is a finding of its own (a person looks)."""
    from vetline.policy.selectors import compiled

    name = version.policy.name
    known: dict[int, list[dict[str, Any]]] = {}
    for v in ScreeningVerdict.objects.filter(
        record_id__in=[r.pk for r in records],
        policy_name=name,
        policy_version=version.number,
    ).exclude(verdict="error"):
        known[v.record_id] = list(v.hits or [])
    engine = None
    out: dict[int, Finding] = {}
    for r in records:
        if r.pk in known:
            out[r.pk] = _finding_from_hits(known[r.pk], name, version.number)
            continue
        if engine is None:
            engine = compiled(version)
        try:
            result = engine.screen(r.text[:200_000], scope_for(r.kind, r.direction))
        except Exception as exc:  # a record that cannot be screened goes to a person
            logger.exception("supervision.screening.failed", extra={"record": r.pk})
            out[r.pk] = Finding(
                Severity.ESCALATE,
                [{"rule_id": SCREENING_ERROR_RULE, "explanation": f"{type(exc).__name__}: {exc}"}],
                [SCREENING_ERROR_RULE],
                name,
                version.number,
            )
            continue
        out[r.pk] = _finding_from_hits([h.as_dict() for h in result.hits], name, version.number)
    return out


def _item_for(
    record: ArchivedRecord,
    *,
    queue_id: int,
    routed_by: int | None,
    origin_key: str,
    source: str,
    sla_days: int,
    now: dt.datetime,
    finding: Finding | None = None,
    sample_run: SampleRun | None = None,
    retro_run: RetroRun | None = None,
) -> ReviewItem:
    return ReviewItem(
        record_id=record.pk,
        origin_key=origin_key,
        source=source,
        queue_id=queue_id,
        routed_by_id=routed_by,
        severity=(finding.severity or None) if finding else None,
        rule_ids=finding.rule_ids if finding else [],
        hits=finding.hits if finding else [],
        policy_name=finding.policy_name if finding else "",
        policy_version=finding.policy_version if finding else None,
        sample_run=sample_run,
        retro_run=retro_run,
        account_id_copy=record.account_id,
        record_captured_at=record.captured_at,
        excerpt=(record.text or "").replace("\n", " ")[:200],
        created_at=now,
        due_at=now + dt.timedelta(days=sla_days),
    )


def _queue_flags(
    records: Sequence[ArchivedRecord],
    findings: Mapping[int, Finding],
    *,
    min_severity: int,
    retro_run: RetroRun | None = None,
) -> tuple[list[ReviewItem], int]:
    """Create the review items of the records whose finding reaches ``min_severity``. A record
    with an open item already is counted, not queued again. Returns (created, already queued)."""
    flagged = [r for r in records if findings[r.pk].severity >= min_severity]
    if not flagged:
        return [], 0
    open_records = set(
        ReviewItem.objects.filter(
            record_id__in=[r.pk for r in flagged], state__in=[s.value for s in ReviewState]
        )
        .exclude(state=ReviewState.CLOSED)
        .values_list("record_id", flat=True)
    )
    routes = selectors.routes()
    default = _default_queue()
    sla = dict(ReviewQueue.objects.values_list("pk", "sla_days"))
    now = timezone.now()
    new: list[ReviewItem] = []
    already = 0
    for r in flagged:
        f = findings[r.pk]
        if r.pk in open_records:
            already += 1
            continue
        queue_id, rule_pk = route(
            selectors.facts_of(r),
            severity=f.severity,
            rule_ids=f.rule_ids,
            routes=routes,
            default_queue_id=default.pk,
        )
        new.append(
            _item_for(
                r,
                queue_id=queue_id,
                routed_by=rule_pk,
                origin_key=f"flag:{f.policy_name}:v{f.policy_version}"[:140],
                source=ItemSource.FLAG,
                sla_days=sla.get(queue_id, 5),
                now=now,
                finding=f,
                retro_run=retro_run,
            )
        )
    keys = {(i.record_id, i.origin_key) for i in new}
    existing = set(
        ReviewItem.objects.filter(
            record_id__in=[k[0] for k in keys], origin_key__in={k[1] for k in keys}
        ).values_list("record_id", "origin_key")
    )
    already += sum(1 for i in new if (i.record_id, i.origin_key) in existing)
    new = [i for i in new if (i.record_id, i.origin_key) not in existing]
    created = ReviewItem.objects.bulk_create(new)
    return created, already


def supervision_policy_version() -> PolicyVersion | None:
    """The current version of the supervision policy (the setting, else the archive's
    default policy); None when no policy is installed."""
    from vetline.policy.models import Policy

    setting = SupervisionSettings.load()
    policy = setting.policy or (
        Policy.objects.filter(is_default=True).first() or Policy.objects.first()
    )
    if policy is None:
        return None
    return policy.versions.select_related("policy").order_by("-number").first()


def process_new_records(*, batch_size: int = FLAG_BATCH, max_batches: int | None = None) -> int:
    """Screen the records archived since the cursor and queue those that reach the configured
    severity. Crash-safe and idempotent: the cursor moves in the same transaction as the items
    it created, under a row lock, so two workers never process a record twice. Returns the
    number of records looked at."""
    seen = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        with transaction.atomic():
            setting = SupervisionSettings.objects.select_for_update().get(
                pk=SupervisionSettings.load().pk
            )
            records = list(
                ArchivedRecord.objects.filter(pk__gt=setting.flag_cursor_record_id)
                .select_related("account")
                .defer("raw_payload")
                .order_by("pk")[:batch_size]
            )
            if not records:
                break
            version = supervision_policy_version()
            created: list[ReviewItem] = []
            already = 0
            if version is not None:
                findings = _screen_records(records, version)
                created, already = _queue_flags(
                    records, findings, min_severity=setting.flag_min_severity
                )
            setting.flag_cursor_record_id = records[-1].pk
            setting.save(update_fields=["flag_cursor_record_id"])
            if created or already or version is None:
                audit(
                    action="supervision.flags.process",
                    actor=None,
                    obj=setting,
                    after={
                        "first_record_id": records[0].pk,
                        "last_record_id": records[-1].pk,
                        "records": len(records),
                        "policy": version.policy.name if version else None,
                        "policy_version": version.number if version else None,
                        "item_ids": [i.pk for i in created][:1000],
                        "queued": len(created),
                        "already_queued": already,
                    },
                )
            seen += len(records)
        if len(records) < batch_size:
            break
    if seen:
        logger.info("supervision.flags.processed", extra={"records": seen})
    return seen


# --- Retroactive runs --------------------------------------------------------------------------


def start_retro_run(
    *,
    actor: Person,
    policy: Policy,
    captured_from: dt.datetime,
    captured_to: dt.datetime,
    run_now: bool = True,
) -> RetroRun:
    """Screen archived records captured in [from, to) with the current version of ``policy``
    (pinned at start). Runs as a background job; ``run_now`` False leaves it queued (the CLI
    runs it in the foreground with a progress bar)."""
    require(actor, Perm.SUPERVISION_MANAGE)
    if captured_from.tzinfo is None or captured_to.tzinfo is None:
        raise ValidationFailed("Times need a time zone.", field="captured_from")
    if captured_from >= captured_to:
        raise ValidationFailed(
            "The start of the range must be before its end.", field="captured_to"
        )
    version = policy.versions.order_by("-number").first()
    if version is None:
        raise ValidationFailed("This policy has no version.", field="policy")
    with transaction.atomic():
        run = RetroRun.objects.create(
            policy=policy,
            policy_version=version,
            captured_from=captured_from,
            captured_to=captured_to,
            started_by=actor,
            total=ArchivedRecord.objects.filter(
                captured_at__gte=captured_from, captured_at__lt=captured_to
            ).count(),
        )
        audit(
            action="supervision.retro.start",
            actor=actor,
            obj=run,
            after={
                "policy": policy.name,
                "policy_version": version.number,
                "captured_from": captured_from.isoformat(),
                "captured_to": captured_to.isoformat(),
                "total": run.total,
            },
        )
        if run_now:
            run_id = run.pk
            transaction.on_commit(lambda: _enqueue_retro(run_id))
    return run


def _enqueue_retro(run_id: int) -> None:
    from vetline.supervision.tasks import retro_run_task

    retro_run_task(run_id)


def run_retro_step(*, run_id: int, batch_size: int = FLAG_BATCH) -> RetroRun:
    """One batch of a retroactive run: re-reads and locks the run, screens the next records
    after its cursor, queues what reaches the severity, moves the cursor. Safe to re-run after
    a crash: the cursor and the items commit together."""
    with transaction.atomic():
        run = (
            RetroRun.objects.select_for_update()
            .select_related("policy_version__policy")
            .filter(pk=run_id)
            .first()
        )
        if run is None:
            raise NotFound("No such retroactive run.")
        if run.finished:
            return run
        records = list(
            ArchivedRecord.objects.filter(
                pk__gt=run.cursor_record_id,
                captured_at__gte=run.captured_from,
                captured_at__lt=run.captured_to,
            )
            .select_related("account")
            .defer("raw_payload")
            .order_by("pk")[:batch_size]
        )
        if run.state == RunState.QUEUED:
            run.state = RunState.RUNNING
        if records:
            findings = _screen_records(records, run.policy_version)
            created, already = _queue_flags(
                records,
                findings,
                min_severity=SupervisionSettings.load().flag_min_severity,
                retro_run=run,
            )
            run.cursor_record_id = records[-1].pk
            run.processed += len(records)
            run.flagged += len(created)
            run.already_queued += already
        if len(records) < batch_size:
            run.state = RunState.DONE
            run.finished_at = timezone.now()
            run.total = max(run.total, run.processed)
            audit(
                action="supervision.retro.finish",
                actor=None,
                obj=run,
                after={
                    "processed": run.processed,
                    "flagged": run.flagged,
                    "already_queued": run.already_queued,
                },
            )
        run.save()
    return run


def run_retro(*, run_id: int, on_progress: Any = None) -> RetroRun:
    """Run a retroactive run to the end (``on_progress(run)`` after each batch)."""
    while True:
        try:
            run = run_retro_step(run_id=run_id)
        except Exception as exc:
            with transaction.atomic():
                failed = RetroRun.objects.select_for_update().get(pk=run_id)
                failed.state = RunState.FAILED
                failed.error = f"{type(exc).__name__}: {exc}"[:2000]
                failed.finished_at = timezone.now()
                failed.save()
                audit(
                    action="supervision.retro.fail",
                    actor=None,
                    obj=failed,
                    after={"error": failed.error},
                )
            raise
        if on_progress is not None:
            on_progress(run)
        if run.finished:
            return run


# --- Review -----------------------------------------------------------------------------------


def _evidence(
    *,
    item: ReviewItem,
    actor: Person,
    action: str,
    event_id: int,
    before_state: str,
    is_review: bool = False,
    disposition: str = "",
    comment: str = "",
    assignee: Person | None = None,
    seconds: int = 0,
) -> ReviewAction:
    return ReviewAction.objects.create(
        item=item,
        reviewer=actor,
        reviewer_name=f"{actor.full_name} <{actor.email}>"[:300],
        action=action,
        is_review=is_review,
        disposition=disposition,
        comment=comment,
        from_state=before_state,
        to_state=item.state,
        assignee=assignee,
        time_spent_seconds=seconds,
        audit_event_id=event_id,
    )


def _locked(item: ReviewItem) -> ReviewItem:
    return ReviewItem.objects.select_for_update().select_related("queue").get(pk=item.pk)


def open_item(*, actor: Person, item: ReviewItem) -> ReviewAction:
    """Log that ``actor`` opened ``item``. Opening is evidence of access, not of review."""
    require(actor, Perm.SUPERVISE)
    with transaction.atomic():
        event = audit(
            action="supervision.item.open", actor=actor, obj=item, after={"state": item.state}
        )
        return _evidence(
            item=item,
            actor=actor,
            action=ReviewActionKind.OPEN,
            event_id=event.pk,
            before_state=item.state,
        )


def claim_item(*, actor: Person, item: ReviewItem) -> ReviewItem:
    require(actor, Perm.SUPERVISE)
    selectors.require_can_work(actor, item)
    with transaction.atomic():
        item = _locked(item)
        if item.assignee_id == actor.pk and item.state == ReviewState.CLAIMED:
            return item
        if item.state == ReviewState.CLAIMED and item.assignee_id not in (None, actor.pk):
            raise Conflict(f"{item.assignee} is reviewing this item.", code="claimed")
        before = item.state
        _transition(item, ReviewState.CLAIMED)
        item.assignee = actor
        item.save(update_fields=["state", "assignee"])
        event = audit(
            action="supervision.item.claim",
            actor=actor,
            obj=item,
            before={"state": before},
            after={"state": item.state, "assignee": actor.pk},
        )
        _evidence(
            item=item,
            actor=actor,
            action=ReviewActionKind.CLAIM,
            event_id=event.pk,
            before_state=before,
            assignee=actor,
        )
    return item


def assign_item(*, actor: Person, item: ReviewItem, assignee: Person) -> ReviewItem:
    """A supervision manager gives an item to a reviewer of its queue."""
    require(actor, Perm.SUPERVISION_MANAGE)
    if not selectors.can_work(assignee, item):
        raise ValidationFailed(f"{assignee} is not a reviewer of this queue.", field="assignee")
    with transaction.atomic():
        item = _locked(item)
        before = {"state": item.state, "assignee": item.assignee_id}
        _transition(item, ReviewState.CLAIMED)
        item.assignee = assignee
        item.save(update_fields=["state", "assignee"])
        event = audit(
            action="supervision.item.assign",
            actor=actor,
            obj=item,
            before=before,
            after={"state": item.state, "assignee": assignee.pk},
        )
        _evidence(
            item=item,
            actor=actor,
            action=ReviewActionKind.ASSIGN,
            event_id=event.pk,
            before_state=str(before["state"]),
            assignee=assignee,
        )
    return item


def release_item(*, actor: Person, item: ReviewItem) -> ReviewItem:
    require(actor, Perm.SUPERVISE)
    with transaction.atomic():
        item = _locked(item)
        if item.assignee_id != actor.pk and not actor.can(Perm.SUPERVISION_MANAGE):
            raise Forbidden("Only the reviewer working on this item can release it.")
        before = item.state
        _transition(item, ReviewState.OPEN)
        item.assignee = None
        item.save(update_fields=["state", "assignee"])
        event = audit(
            action="supervision.item.release",
            actor=actor,
            obj=item,
            before={"state": before},
            after={"state": item.state},
        )
        _evidence(
            item=item,
            actor=actor,
            action=ReviewActionKind.RELEASE,
            event_id=event.pk,
            before_state=before,
        )
    return item


def _seconds_spent(item: ReviewItem, actor: Person, given: int | None) -> int:
    if given is not None:
        if not 0 <= given <= MAX_REVIEW_SECONDS:
            raise ValidationFailed(
                f"Time spent is between 0 and {MAX_REVIEW_SECONDS} seconds.",
                field="time_spent_seconds",
            )
        return given
    last = (
        ReviewAction.objects.filter(
            item=item,
            reviewer=actor,
            action__in=[ReviewActionKind.OPEN, ReviewActionKind.CLAIM, ReviewActionKind.ASSIGN],
        )
        .order_by("-at", "-id")
        .values_list("at", flat=True)
        .first()
    )
    if last is None:
        return 0
    return max(0, min(MAX_REVIEW_SECONDS, int((timezone.now() - last).total_seconds())))


def dispose_item(
    *,
    actor: Person,
    item: ReviewItem,
    disposition: Disposition | str,
    comment: str = "",
    time_spent_seconds: int | None = None,
) -> ReviewItem:
    """Record a disposition on an item the actor is reviewing (an open or escalated item is
    claimed first, with its own evidence). A comment is required for
    anything but *no issue*. *Violation, escalated* moves the item up the escalation chain
    (closing it at the top). Writes the evidence of review with the time spent (given, or
    measured from when the reviewer opened or claimed the item)."""
    require(actor, Perm.SUPERVISE)
    try:
        disp = Disposition(disposition)
    except ValueError:
        raise ValidationFailed(
            "Choose a disposition: " + ", ".join(d.value for d in Disposition) + ".",
            field="disposition",
        ) from None
    comment = (comment or "").strip()
    if disp.needs_comment and not comment:
        raise ValidationFailed(
            f"Explain “{disp.label}” in a comment: only “No issue” may be recorded without one.",
            field="comment",
        )
    if len(comment) > MAX_COMMENT:
        raise ValidationFailed(f"At most {MAX_COMMENT:,} characters.", field="comment")
    selectors.require_can_work(actor, item)
    with transaction.atomic():
        item = _locked(item)
        if item.state in (ReviewState.OPEN, ReviewState.ESCALATED):
            item = claim_item(actor=actor, item=item)  # claiming is part of reviewing
            item = _locked(item)
        if item.state not in (ReviewState.CLAIMED, ReviewState.NEEDS_INFO):
            raise Conflict("This item is closed.", code="closed")
        if item.assignee_id != actor.pk:
            raise Conflict(f"{item.assignee} is reviewing this item.", code="claimed")
        seconds = _seconds_spent(item, actor, time_spent_seconds)
        before = {"state": item.state, "queue": item.queue_id, "disposition": item.disposition}
        top = item.queue.escalate_to_id is None
        _transition(item, state_after(disp, top_of_chain=top))
        item.disposition = disp.value
        item.review_seconds_total += seconds
        if item.state == ReviewState.ESCALATED:
            item.queue_id = item.queue.escalate_to_id  # type: ignore[assignment]
            item.escalation_level += 1
            item.assignee = None
            item.due_at = timezone.now() + dt.timedelta(
                days=ReviewQueue.objects.get(pk=item.queue_id).sla_days
            )
        elif item.state == ReviewState.CLOSED:
            item.closed_at = timezone.now()
        item.save()
        event = audit(
            action="supervision.item.dispose",
            actor=actor,
            obj=item,
            before=before,
            after={
                "state": item.state,
                "queue": item.queue_id,
                "disposition": disp.value,
                "comment": comment,
                "time_spent_seconds": seconds,
            },
        )
        _evidence(
            item=item,
            actor=actor,
            action=ReviewActionKind.DISPOSITION,
            event_id=event.pk,
            before_state=str(before["state"]),
            is_review=True,
            disposition=disp.value,
            comment=comment,
            seconds=seconds,
        )
    return item


def bulk_dispose_false_positives(
    *,
    actor: Person,
    item_ids: Sequence[int],
    reason: str,
    time_spent_seconds: int = 0,
) -> list[ReviewItem]:
    """Close many items as false positives with one reason. All or nothing: every item must be
    visible to the actor, workable by them, open, and not being reviewed by someone else."""
    require(actor, Perm.SUPERVISE)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Give the reason these are false positives.", field="reason")
    if len(reason) > MAX_COMMENT:
        raise ValidationFailed(f"At most {MAX_COMMENT:,} characters.", field="reason")
    ids = sorted(set(item_ids))
    if not ids:
        raise ValidationFailed("Select at least one item.", field="item_ids")
    if len(ids) > MAX_BULK:
        raise ValidationFailed(f"At most {MAX_BULK} items at once.", field="item_ids")
    if not 0 <= time_spent_seconds <= MAX_REVIEW_SECONDS:
        raise ValidationFailed("Time spent is out of range.", field="time_spent_seconds")
    with transaction.atomic():
        items = list(
            selectors.visible_items(actor).select_for_update().filter(pk__in=ids).order_by("pk")
        )
        if len(items) != len(ids):
            raise NotFound("Some of these items do not exist or are not yours to see.")
        per_item = time_spent_seconds // len(items)
        blocked = [
            i.pk
            for i in items
            if i.state == ReviewState.CLOSED
            or i.state == ReviewState.ESCALATED
            or (i.assignee_id not in (None, actor.pk))
        ]
        if blocked:
            raise Conflict(
                "These items are closed, escalated or being reviewed by someone else: "
                + ", ".join(f"#{pk}" for pk in blocked[:20]),
                code="not_bulk_closable",
            )
        queues = {q.pk: q for q in ReviewQueue.objects.filter(pk__in={i.queue_id for i in items})}
        now = timezone.now()
        for item in items:
            item.queue = queues[item.queue_id]
            selectors.require_can_work(actor, item)
            before = item.state
            _transition(item, ReviewState.CLOSED)
            item.disposition = Disposition.FALSE_POSITIVE
            item.closed_at = now
            item.assignee = actor
            item.review_seconds_total += per_item
            item.save()
            event = audit(
                action="supervision.item.dispose",
                actor=actor,
                obj=item,
                before={"state": before},
                after={
                    "state": item.state,
                    "disposition": Disposition.FALSE_POSITIVE.value,
                    "comment": reason,
                    "bulk": True,
                    "time_spent_seconds": per_item,
                },
            )
            _evidence(
                item=item,
                actor=actor,
                action=ReviewActionKind.BULK_DISPOSITION,
                event_id=event.pk,
                before_state=before,
                is_review=True,
                disposition=Disposition.FALSE_POSITIVE.value,
                comment=reason,
                seconds=per_item,
            )
    return items


# --- Sampling plans -----------------------------------------------------------------------------


def _decimal(value: Any, field: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        raise ValidationFailed("Enter a number, e.g. 0.95.", field=field) from None
    if not d.is_finite():
        raise ValidationFailed("Enter a number, e.g. 0.95.", field=field)
    return d


def create_sampling_plan(
    *,
    actor: Person,
    name: str,
    population: Population,
    queue: ReviewQueue,
    period: str,
    method: str,
    fixed_rate_percent: Any = None,
    confidence: Any = None,
    tolerable_rate: Any = None,
    expected_rate: Any = None,
) -> SamplingPlan:
    """A plan is checked when it is made: an impossible plan is refused with what to change."""
    from vetline.supervision import sampling

    require(actor, Perm.SUPERVISION_MANAGE)
    name = name.strip()
    if not name or len(name) > 120:
        raise ValidationFailed("Name the plan (at most 120 characters).", field="name")
    if period not in Period.values:
        raise ValidationFailed("The period is daily, weekly or monthly.", field="period")
    if method not in SamplingMethod.values:
        raise ValidationFailed("The method is fixed_rate or statistical.", field="method")
    rate = _decimal(fixed_rate_percent, "fixed_rate_percent")
    conf = _decimal(confidence, "confidence")
    tol = _decimal(tolerable_rate, "tolerable_rate")
    exp = _decimal(expected_rate, "expected_rate")
    if method == SamplingMethod.FIXED_RATE:
        if rate is None:
            raise ValidationFailed(
                "A fixed-rate plan needs a rate in percent, e.g. 2.", field="fixed_rate_percent"
            )
        if not Decimal(0) < rate <= Decimal(100):
            raise ValidationFailed(
                "The rate is a percentage above 0 and at most 100.", field="fixed_rate_percent"
            )
        sampling.validate_fixed_rate(rate=rate / 100)
        if conf is not None and not Decimal(0) < conf < Decimal(1):
            raise ValidationFailed(
                "The confidence is strictly between 0 and 1, e.g. 0.95.", field="confidence"
            )
    else:
        for value, field_name, example in (
            (conf, "confidence", "0.95"),
            (tol, "tolerable_rate", "0.05"),
            (exp, "expected_rate", "0.01"),
        ):
            if value is None:
                raise ValidationFailed(
                    f"A statistical plan needs a {field_name.replace('_', ' ')}, e.g. {example}.",
                    field=field_name,
                )
        assert conf is not None and tol is not None and exp is not None
        sampling.validate_statistical_plan(confidence=conf, tolerable_rate=tol, expected_rate=exp)
        sampling.statistical_sample_size(confidence=conf, tolerable_rate=tol, expected_rate=exp)
    for value, field_name in (
        (conf, "confidence"),
        (tol, "tolerable_rate"),
        (exp, "expected_rate"),
    ):
        if value is not None and value.as_tuple().exponent < -4:  # type: ignore[operator]
            raise ValidationFailed("At most 4 decimal places.", field=field_name)
    with transaction.atomic():
        if SamplingPlan.objects.filter(name=name).exists():
            raise Conflict("A plan with that name already exists.", code="duplicate")
        plan = SamplingPlan.objects.create(
            name=name,
            population=population,
            queue=queue,
            period=period,
            method=method,
            fixed_rate_percent=rate,
            confidence=conf,
            tolerable_rate=tol,
            expected_rate=exp,
            created_by=actor,
        )
        audit(
            action="supervision.plan.create",
            actor=actor,
            obj=plan,
            after={
                "population": population.pk,
                "queue": queue.pk,
                "period": period,
                "method": method,
                "fixed_rate_percent": str(rate) if rate is not None else None,
                "confidence": str(conf) if conf is not None else None,
                "tolerable_rate": str(tol) if tol is not None else None,
                "expected_rate": str(exp) if exp is not None else None,
            },
        )
    return plan


def plan_parameters(plan: SamplingPlan) -> dict[str, Any]:
    return {
        "method": plan.method,
        "fixed_rate_percent": str(plan.fixed_rate_percent) if plan.fixed_rate_percent else None,
        "confidence": str(plan.confidence) if plan.confidence is not None else None,
        "tolerable_rate": str(plan.tolerable_rate) if plan.tolerable_rate is not None else None,
        "expected_rate": str(plan.expected_rate) if plan.expected_rate is not None else None,
    }


def population_records(spec_population: Population) -> Any:
    return ArchivedRecord.objects.filter(selectors.population_q(spec_population.spec()))


def run_sampling_plan(
    *, actor: Person | None, plan: SamplingPlan, day: dt.date, trigger: str = "job"
) -> SampleRun:
    """Sample the plan's population for the period containing ``day``: once per period (a
    second call returns the first run). An empty population is recorded as *nothing to
    sample*; a plan that cannot be met (a sample larger than the population) is recorded as
    failed with the reason. Records that already have a review item are counted in the sample
    but not queued twice."""
    from vetline.supervision import draw, population, sampling

    if actor is not None:
        require(actor, Perm.SUPERVISION_MANAGE)
    start, end = selectors.period_bounds(plan.period, day)
    existing = SampleRun.objects.filter(plan=plan, period_start=start).first()
    if existing is not None:
        return existing
    qs = population_records(plan.population).filter(captured_at__gte=start, captured_at__lt=end)
    ids = population.fetch_ids(qs)
    size = len(ids)
    params = plan_parameters(plan)
    base = {
        "plan": plan,
        "period_start": start,
        "period_end": end,
        "population_size": size,
        "method": plan.method,
        "parameters": params,
        "trigger": trigger[:20],
    }
    run: SampleRun | None = None
    new_items: list[ReviewItem] = []
    if size == 0:
        run = SampleRun(
            **base,
            status=SampleStatus.NOTHING_TO_SAMPLE,
            population_sha256=draw.population_sha256(ids),
            note=(
                f"Nothing to sample: no record of “{plan.population}” was captured between "
                f"{start:%Y-%m-%d} and {end:%Y-%m-%d} (UTC)."
            ),
        )
    else:
        try:
            n = sampling.plan_sample_size(
                method=plan.method,
                population_size=size,
                fixed_rate=(plan.fixed_rate_percent / 100) if plan.fixed_rate_percent else None,
                confidence=plan.confidence,
                tolerable_rate=plan.tolerable_rate,
                expected_rate=plan.expected_rate,
            )
        except ValidationFailed as exc:
            run = SampleRun(
                **base,
                status=SampleStatus.FAILED,
                population_sha256=draw.population_sha256(ids),
                note=exc.message,
            )
        else:
            seed = draw.new_seed()
            sample = draw.draw_sample(ids, sample_size=n, seed=seed)
            run = SampleRun(
                **base,
                status=SampleStatus.DRAWN,
                population_sha256=sample.population_sha256,
                seed=seed,
                sample_size=n,
                drawn_record_ids=list(sample.ids),
                note=f"Procedure {sample.procedure}.",
            )
    with transaction.atomic():
        SamplingPlan.objects.select_for_update().get(pk=plan.pk)
        again = SampleRun.objects.filter(plan=plan, period_start=start).first()
        if again is not None:
            return again
        run.save()
        if run.status == SampleStatus.DRAWN:
            drawn = run.drawn_record_ids
            queued = set(
                ReviewItem.objects.filter(record_id__in=drawn).values_list("record_id", flat=True)
            )
            records = ArchivedRecord.objects.filter(
                pk__in=[i for i in drawn if i not in queued]
            ).defer("raw_payload")
            now = timezone.now()
            new_items = ReviewItem.objects.bulk_create(
                [
                    _item_for(
                        r,
                        queue_id=plan.queue_id,
                        routed_by=None,
                        origin_key="sample",
                        source=ItemSource.SAMPLE,
                        sla_days=plan.queue.sla_days,
                        now=now,
                        sample_run=run,
                    )
                    for r in records.iterator(chunk_size=2000)
                ],
                batch_size=1000,
            )
            run.new_items = len(new_items)
            run.already_queued = len(queued)
            run.save(update_fields=["new_items", "already_queued"])
        audit(
            action="supervision.sample.run",
            actor=actor,
            obj=run,
            after={
                "plan": plan.pk,
                "status": run.status,
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
                "population_size": size,
                "population_sha256": run.population_sha256,
                "seed": run.seed,
                "sample_size": run.sample_size,
                "new_items": run.new_items,
                "already_queued": run.already_queued,
                "note": run.note,
            },
        )
    logger.info(
        "supervision.sample.run",
        extra={"plan": plan.pk, "status": run.status, "population": size, "n": run.sample_size},
    )
    return run


def run_due_plans(*, today: dt.date | None = None) -> list[SampleRun]:
    """Sample every active plan for its last complete period (idempotent: once per period)."""
    today = today or timezone.now().date()
    runs = []
    for plan in SamplingPlan.objects.filter(is_active=True).select_related("population", "queue"):
        day = selectors.previous_period_day(plan.period, today)
        try:
            runs.append(run_sampling_plan(actor=None, plan=plan, day=day, trigger="schedule"))
        except IntegrityError:  # a concurrent worker sampled it first
            continue
    return runs


# --- Inspection -------------------------------------------------------------------------------

MAX_TIMELINE = 2000


@dataclass(frozen=True, slots=True)
class Timeline:
    subject: str
    accounts: list[SocialAccount]
    records: list[ArchivedRecord]
    truncated: bool


def inspect_interactions(
    *,
    actor: Person,
    person: Person | None = None,
    account: SocialAccount | None = None,
    start: dt.datetime,
    end: dt.datetime,
) -> Timeline:
    """One timeline of the interactions of an employee (every account they hold) or of one
    account, across networks, over [start, end). Every access is audited."""
    from vetline.accounts.models import SocialAccount

    require(actor, Perm.INSPECT)
    if (person is None) == (account is None):
        raise ValidationFailed("Choose an employee or an account.", field="person")
    if start >= end:
        raise ValidationFailed("The start must be before the end.", field="end")
    if person is not None:
        accounts = list(SocialAccount.objects.filter(owner=person).order_by("network", "handle"))
        subject = f"{person.full_name} <{person.email}>"
    else:
        assert account is not None
        accounts = [account]
        subject = str(account)
    stamp = Q(network_timestamp__gte=start, network_timestamp__lt=end) | Q(
        network_timestamp__isnull=True, captured_at__gte=start, captured_at__lt=end
    )
    rows = list(
        ArchivedRecord.objects.filter(account__in=accounts)
        .filter(stamp)
        .exclude(kind="profile_snapshot")
        .select_related("account")
        .defer("raw_payload")
        .order_by("captured_at", "id")[: MAX_TIMELINE + 1]
    )
    truncated = len(rows) > MAX_TIMELINE
    rows = rows[:MAX_TIMELINE]
    far = dt.datetime.min.replace(tzinfo=dt.UTC)
    rows.sort(key=lambda r: (r.network_timestamp or r.captured_at or far, r.pk))
    with transaction.atomic():
        audit(
            action="supervision.inspection.view",
            actor=actor,
            obj=person or account,
            after={
                "subject": subject,
                "person": person.pk if person else None,
                "account": account.pk if account else None,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "accounts": [a.pk for a in accounts],
                "records": len(rows),
                "truncated": truncated,
            },
        )
    return Timeline(subject, accounts, rows, truncated)


# --- Notifications -------------------------------------------------------------------------------


def set_digest_preference(*, actor: Person, enabled: bool) -> DigestPreference:
    """Switch the actor's own digest of new review items on or off. Overdue notices and
    escalations cannot be switched off."""
    require_any(actor, Perm.SUPERVISE, Perm.SUPERVISION_MANAGE)
    with transaction.atomic():
        DigestPreference.objects.get_or_create(person=actor)
        pref = DigestPreference.objects.select_for_update().get(person=actor)
        before = pref.digest_enabled
        if before == enabled:
            return pref
        pref.digest_enabled = enabled
        pref.updated_at = timezone.now()
        pref.save(update_fields=["digest_enabled", "updated_at"])
        audit(
            action="supervision.digest.preference",
            actor=actor,
            obj=pref,
            before={"digest_enabled": before},
            after={"digest_enabled": enabled},
        )
    return pref
