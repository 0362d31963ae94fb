"""In-app notifications, also e-mailed (after the commit) through Django's e-mail backend."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from vetline.audit.actions import record
from vetline.core.errors import NotFound
from vetline.identity.models import Person
from vetline.publishing.models import Notification

logger = logging.getLogger(__name__)


def notify(*, people: Iterable[Person], title: str, body: str = "", url: str = "") -> int:
    """Notify people in the app and by e-mail. Call inside the transaction of the change the
    notification is about: the rows commit with it, the e-mail goes after the commit."""
    unique = {p.pk: p for p in people if p.is_active}
    if not unique:
        return 0
    rows = Notification.objects.bulk_create(
        [
            Notification(person=p, title=title[:300], body=body, url=url[:500])
            for p in unique.values()
        ]
    )
    emails = [p.email for p in unique.values() if p.email]

    def send() -> None:
        try:
            send_mail(
                subject=f"[Vetline] {title[:200]}",
                message=f"{body}\n\n{url}".strip(),
                from_email=None,
                recipient_list=emails,
            )
        except Exception:  # the notification stays in the app when mail is down
            logger.exception("publishing.notification.email_failed")

    if emails:
        transaction.on_commit(send)
    return len(rows)


def mark_read(*, actor: Person, notification_id: int) -> Notification:
    with transaction.atomic():
        note = (
            Notification.objects.select_for_update()
            .filter(pk=notification_id, person=actor)
            .first()
        )
        if note is None:
            raise NotFound("No such notification.")
        if note.read_at is None:
            note.read_at = timezone.now()
            note.save(update_fields=["read_at"])
            record(action="publishing.notification.read", actor=actor, obj=note)
    return note
