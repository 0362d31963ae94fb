"""Supervision e-mails: the digest of new review items, overdue notices to the people
responsible for an item, and escalations of overdue items to the supervision managers.

How it works (docs/supervision.md §3, "Notifications"):

* **Outbox.** Deciding to notify and sending are separate. :func:`plan_overdue` and
  :func:`plan_digests` write :class:`NotificationEmail` rows (and, for overdue items, one
  :class:`OverdueNotice` per item and escalation level) in the same transaction as the
  bookkeeping that says they were decided (the digest cursor, the notice). After the commit,
  :func:`send_pending` sends what is pending, one row at a time under a row lock, marks it sent
  and writes one audit event per e-mail (``supervision.notification.send``: recipient and
  counts). A failure is logged and retried later with a growing delay; it never raises into
  the caller. A crash between planning and sending loses nothing (the rows wait); a crash
  between the SMTP hand-over and the commit of "sent" may send that one e-mail twice (at least
  once, never silently dropped).
* **Digest.** Per person, at most one every ``VETLINE_SUPERVISION_DIGEST_MINUTES``: the open
  items created since their last digest that are theirs to pick up, i.e. unassigned items of
  the queues they review and items assigned to them (routing decides the queue; the queue's
  reviewers are its members). Counts per queue and the oldest items, never message text.
  People can switch the digest off (:func:`vetline.supervision.actions.set_digest_preference`);
  the cursor still moves, so switching it back on does not deliver a backlog.
* **Overdue.** An open item past its ``due_at`` is notified once per escalation level: its
  assignee (or, unassigned, its queue's reviewers) get an overdue notice, every supervision
  manager an escalation. Escalating an item moves it to a new level with a new due date, so it
  can be notified again there. Cannot be switched off.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from vetline.audit.actions import record as audit
from vetline.identity.roles import ROLE_PERMISSIONS, Perm
from vetline.supervision import mailtext
from vetline.supervision.models import (
    DigestPreference,
    ItemSource,
    NotificationEmail,
    NotificationKind,
    NotificationStatus,
    OverdueNotice,
    ReviewItem,
    ReviewQueue,
)

if TYPE_CHECKING:
    from vetline.identity.models import Person

logger = logging.getLogger(__name__)

OVERDUE_BATCH: Final = 500
SEND_BATCH: Final = 500
MAX_RETRY_MINUTES: Final = 60
ACTOR_NAME: Final = "supervision notifications"
SOURCE_LABELS: Final = {ItemSource.FLAG.value: "flagged", ItemSource.SAMPLE.value: "spot-check"}


def _base_url() -> str:
    return str(settings.VETLINE_BASE_URL)


def managers() -> list[Person]:
    """Every active person who manages supervision (``supervision.manage``)."""
    from vetline.identity.models import Person

    roles = [r.value for r, perms in ROLE_PERMISSIONS.items() if Perm.SUPERVISION_MANAGE in perms]
    return list(
        Person.objects.filter(is_active=True, role_grants__role__in=roles).distinct().order_by("pk")
    )


def _reviewed_queue_ids(person: Person) -> set[int]:
    return set(
        ReviewQueue.reviewers.through.objects.filter(person_id=person.pk).values_list(
            "reviewqueue_id", flat=True
        )
    )


def _sees(person: Person, queue_id: int, reviewed: set[int]) -> bool:
    """Whether ``person`` may see items of ``queue_id`` (the rule of selectors.visible_items)."""
    if not person.is_active:
        return False
    if person.can(Perm.SUPERVISION_MANAGE):
        return True
    return person.can(Perm.SUPERVISE) and queue_id in reviewed


def _line(item: ReviewItem) -> mailtext.ItemLine:
    return mailtext.ItemLine(
        id=item.pk,
        queue_id=item.queue_id,
        queue=item.queue.name,
        source=SOURCE_LABELS.get(item.source, item.source),
        created_at=item.created_at,
        due_at=item.due_at,
        escalation_level=item.escalation_level,
        assignee=item.assignee.full_name if item.assignee_id and item.assignee else "",
    )


def _outbox(
    *,
    kind: NotificationKind,
    person: Person,
    mail: mailtext.Mail,
    counts: dict[str, int],
    item_ids: Iterable[int],
    now: dt.datetime,
) -> NotificationEmail:
    return NotificationEmail.objects.create(
        kind=kind,
        recipient=person,
        to_email=person.email,
        subject=mail.subject[:300],
        body=mail.body,
        counts=counts,
        item_ids=sorted(item_ids),
        created_at=now,
        next_attempt_at=now,
    )


# --- Overdue items ---------------------------------------------------------------------------


def plan_overdue(*, now: dt.datetime | None = None) -> int:
    """Notify every open item past its due date that was not notified at its current
    escalation level yet. Returns the number of items notified."""
    now = now or timezone.now()
    total = 0
    clashes = 0
    while True:
        try:
            n = _plan_overdue_batch(now)
        except IntegrityError:
            # Another run notified some of these in the meantime: the unique notice refused the
            # duplicates and this batch rolled back whole; the next pass sees what is left.
            clashes += 1
            logger.warning("supervision.overdue.concurrent_run", extra={"clashes": clashes})
            if clashes >= 3:
                raise
            continue
        total += n
        if n < OVERDUE_BATCH:
            return total


def _plan_overdue_batch(now: dt.datetime) -> int:
    notified = OverdueNotice.objects.filter(
        item_id=OuterRef("pk"), escalation_level=OuterRef("escalation_level")
    )
    with transaction.atomic():
        items = list(
            ReviewItem.objects.filter(is_open=True, due_at__lt=now)
            .filter(~Exists(notified))
            .select_related("queue", "assignee")
            .order_by("due_at", "id")[:OVERDUE_BATCH]
        )
        if not items:
            return 0
        OverdueNotice.objects.bulk_create(
            [
                OverdueNotice(
                    item=i,
                    escalation_level=i.escalation_level,
                    due_at=i.due_at or now,
                    created_at=now,
                )
                for i in items
            ]
        )
        bosses = managers()
        boss_ids = {p.pk for p in bosses}
        # person -> items, and the people to whom the items are an escalation (managers).
        people: dict[int, Person] = {p.pk: p for p in bosses}
        theirs: dict[int, list[ReviewItem]] = defaultdict(list)
        queue_reviewers: dict[int, list[Person]] = {}
        reviewed: dict[int, set[int]] = {}
        for item in items:
            responsible: list[Person]
            if item.assignee_id and item.assignee is not None:
                responsible = [item.assignee]
            else:
                if item.queue_id not in queue_reviewers:
                    queue_reviewers[item.queue_id] = list(
                        item.queue.reviewers.filter(is_active=True).order_by("pk")
                    )
                responsible = queue_reviewers[item.queue_id]
            for person in responsible:
                if person.pk not in reviewed:
                    reviewed[person.pk] = _reviewed_queue_ids(person)
                if _sees(person, item.queue_id, reviewed[person.pk]):
                    people.setdefault(person.pk, person)
                    theirs[person.pk].append(item)
            for boss in bosses:
                if item not in theirs[boss.pk]:
                    theirs[boss.pk].append(item)
        mails = 0
        for pk, its in theirs.items():
            person = people[pk]
            if not its or not person.email:
                continue
            escalation = pk in boss_ids
            mail = mailtext.overdue(
                name=person.full_name or person.email,
                items=[_line(i) for i in its],
                escalation=escalation,
                base_url=_base_url(),
                now=now,
            )
            _outbox(
                kind=NotificationKind.ESCALATION if escalation else NotificationKind.OVERDUE,
                person=person,
                mail=mail,
                counts={"overdue": len(its)},
                item_ids=[i.pk for i in its],
                now=now,
            )
            mails += 1
        audit(
            action="supervision.overdue.notify",
            actor=None,
            actor_name=ACTOR_NAME,
            object_type="supervision.reviewitem",
            object_repr=f"{len(items)} overdue review items",
            after={
                "items": [{"id": i.pk, "level": i.escalation_level} for i in items],
                "emails": mails,
            },
        )
    logger.info("supervision.overdue.planned", extra={"items": len(items), "emails": mails})
    return len(items)


# --- Digest of new items -----------------------------------------------------------------------


def digest_candidates() -> list[Person]:
    """Who may get a digest: active reviewers of a queue, and active assignees of open items."""
    from vetline.identity.models import Person

    reviewer_ids = ReviewQueue.reviewers.through.objects.values("person_id")
    assignee_ids = ReviewItem.objects.filter(is_open=True, assignee__isnull=False).values(
        "assignee_id"
    )
    return list(
        Person.objects.filter(is_active=True)
        .filter(Q(pk__in=reviewer_ids) | Q(pk__in=assignee_ids))
        .order_by("pk")
    )


def plan_digests(*, now: dt.datetime | None = None) -> int:
    """Write the digest of everyone whose digest is due. Returns the number of digests."""
    now = now or timezone.now()
    made = 0
    for person in digest_candidates():
        try:
            if _plan_digest(person, now):
                made += 1
        except Exception:  # one person's digest must not stop everyone else's
            logger.exception("supervision.digest.plan_failed", extra={"person": person.pk})
    return made


def _plan_digest(person: Person, now: dt.datetime) -> bool:
    minutes = int(settings.VETLINE_SUPERVISION_DIGEST_MINUTES)
    with transaction.atomic():
        DigestPreference.objects.get_or_create(person=person)
        pref = DigestPreference.objects.select_for_update().get(person=person)
        if pref.last_sent_at is not None and now - pref.last_sent_at < dt.timedelta(
            minutes=minutes
        ):
            return False  # the rate limit: new items wait for the next digest
        high = ReviewItem.objects.aggregate(m=Max("pk"))["m"] or 0
        if high <= pref.cursor_item_id:
            return False
        if not (person.can(Perm.SUPERVISE) or person.can(Perm.SUPERVISION_MANAGE)):
            pref.cursor_item_id = high
            pref.save(update_fields=["cursor_item_id"])
            return False
        reviewed = _reviewed_queue_ids(person)
        mine = Q(queue_id__in=reviewed, assignee__isnull=True) | Q(assignee=person)
        if not person.can(Perm.SUPERVISION_MANAGE):
            mine &= Q(queue_id__in=reviewed)  # an assignee who left the queue no longer sees it
        qs = ReviewItem.objects.filter(
            pk__gt=pref.cursor_item_id, pk__lte=high, is_open=True
        ).filter(mine)
        pref.cursor_item_id = high
        if not pref.digest_enabled:
            pref.save(update_fields=["cursor_item_id"])
            return False
        counts: dict[int, int] = defaultdict(int)
        for queue_id in qs.values_list("queue_id", flat=True):
            counts[queue_id] += 1
        if not counts:
            pref.save(update_fields=["cursor_item_id"])
            return False
        limit = max(1, int(settings.VETLINE_SUPERVISION_DIGEST_ITEMS))
        oldest = list(qs.select_related("queue", "assignee").order_by("created_at", "id")[:limit])
        names = dict(ReviewQueue.objects.filter(pk__in=counts).values_list("pk", "name"))
        mail = mailtext.digest(
            name=person.full_name or person.email,
            counts=counts,
            queue_names=names,
            oldest=[_line(i) for i in oldest],
            base_url=_base_url(),
            now=now,
        )
        pref.last_sent_at = now
        pref.save(update_fields=["cursor_item_id", "last_sent_at"])
        if not person.email:
            return False
        _outbox(
            kind=NotificationKind.DIGEST,
            person=person,
            mail=mail,
            counts={names.get(q, str(q)): n for q, n in counts.items()},
            item_ids=[i.pk for i in oldest],
            now=now,
        )
    return True


# --- Sending ------------------------------------------------------------------------------------


def retry_delay(attempts: int) -> dt.timedelta:
    """1, 2, 4, … minutes after the n-th failed attempt, at most an hour."""
    return dt.timedelta(minutes=min(MAX_RETRY_MINUTES, 2 ** max(0, attempts - 1)))


def send_pending(*, now: dt.datetime | None = None) -> tuple[int, int]:
    """Send every pending e-mail that is due. Never raises. Returns (sent, failed attempts)."""
    now = now or timezone.now()
    ids = list(
        NotificationEmail.objects.filter(
            status=NotificationStatus.PENDING, next_attempt_at__lte=now
        )
        .order_by("id")
        .values_list("id", flat=True)[:SEND_BATCH]
    )
    sent = failed = 0
    for mail_id in ids:
        try:
            ok = _send_one(mail_id, now)
        except Exception:  # the database itself failing: log, the row is retried next run
            logger.exception("supervision.notification.send_crashed", extra={"mail": mail_id})
            ok = False
        if ok:
            sent += 1
        elif ok is False:
            failed += 1
    if sent or failed:
        logger.info("supervision.notification.sent", extra={"sent": sent, "failed": failed})
    return sent, failed


def _send_one(mail_id: int, now: dt.datetime) -> bool | None:
    """Send one e-mail under its row lock. True sent, False failed, None nothing to do."""
    with transaction.atomic():
        row = NotificationEmail.objects.select_for_update().filter(pk=mail_id).first()
        if row is None or row.status != NotificationStatus.PENDING:
            return None
        row.attempts += 1
        try:
            EmailMessage(
                subject=row.subject, body=row.body, from_email=None, to=[row.to_email]
            ).send()
        except Exception as exc:
            row.last_error = f"{type(exc).__name__}: {exc}"[:500]
            gave_up = row.attempts >= int(settings.VETLINE_SUPERVISION_MAIL_ATTEMPTS)
            if gave_up:
                row.status = NotificationStatus.FAILED
                audit(
                    action="supervision.notification.fail",
                    actor=None,
                    actor_name=ACTOR_NAME,
                    obj=row,
                    after={
                        "kind": row.kind,
                        "recipients": [row.to_email],
                        "recipient_ids": [row.recipient_id],
                        "attempts": row.attempts,
                        "error": row.last_error,
                    },
                )
            else:
                row.next_attempt_at = now + retry_delay(row.attempts)
            row.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
            logger.warning(
                "supervision.notification.send_failed",
                extra={"mail": mail_id, "attempts": row.attempts, "gave_up": gave_up},
                exc_info=True,
            )
            return False
        row.status = NotificationStatus.SENT
        row.sent_at = now
        row.last_error = ""
        row.save(update_fields=["attempts", "last_error", "status", "sent_at"])
        audit(
            action="supervision.notification.send",
            actor=None,
            actor_name=ACTOR_NAME,
            obj=row,
            after={
                "kind": row.kind,
                "recipients": [row.to_email],
                "recipient_ids": [row.recipient_id],
                "counts": row.counts,
                "item_ids": row.item_ids,
                "attempts": row.attempts,
            },
        )
    return True


def run_notifications(*, now: dt.datetime | None = None) -> dict[str, int]:
    """One pass of the notification job: overdue notices, digests, then send. Each step is
    independent and never raises: a failing step is logged and the next pass tries again."""
    now = now or timezone.now()
    out = {"overdue_items": 0, "digests": 0, "sent": 0, "failed": 0}
    try:
        out["overdue_items"] = plan_overdue(now=now)
    except Exception:
        logger.exception("supervision.overdue.plan_failed")
    try:
        out["digests"] = plan_digests(now=now)
    except Exception:
        logger.exception("supervision.digest.plan_failed")
    out["sent"], out["failed"] = send_pending(now=now)
    return out
