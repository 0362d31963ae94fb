"""Reads of retention: which records a legal hold covers, which have expired, the holds and
the disposal runs a page or endpoint may show.

What a hold covers (kept deliberately simple, so a reviewer can predict it):

* **Custodians.** Records of the hold's accounts, and of the personal-for-business (employee)
  accounts owned by the hold's people, as registered *when the hold is evaluated* (an account a
  custodian registers later is covered too). A person's activity on corporate accounts is not
  mapped to them: name those accounts as custodians.
* **Date range** (UTC days, both ends inclusive, each optional) on the communication's network
  timestamp, or its capture time when the network gave none.
* **Query** (optional): a case-insensitive substring of the text.

Holds apply per item: if any version of an item (an edit, a deletion) matches, every version of
it is held, so an item's history is never split by disposal.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from vetline.accounts.models import AccountKind, SocialAccount
from vetline.archive.models import ArchivedRecord
from vetline.archive.models_retention import DisposalRun, LegalHold, RecordClass
from vetline.core.errors import NotFound
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def hold_custodian_accounts(hold: LegalHold) -> set[int]:
    ids = set(hold.accounts.values_list("id", flat=True))
    people = list(hold.people.values_list("id", flat=True))
    if people:
        ids |= set(
            SocialAccount.objects.filter(
                owner_id__in=people, kind=AccountKind.EMPLOYEE
            ).values_list("id", flat=True)
        )
    return ids


def hold_filter(hold: LegalHold) -> Q:
    """The records one hold covers directly (one version; see :func:`records_under_hold`)."""
    accounts = hold_custodian_accounts(hold)
    if not accounts:
        return Q(pk__in=[])
    q = Q(account_id__in=sorted(accounts))
    if hold.date_from is not None:
        start = _day_start(hold.date_from)
        q &= Q(network_timestamp__gte=start) | Q(
            network_timestamp__isnull=True, captured_at__gte=start
        )
    if hold.date_to is not None:
        end = _day_start(hold.date_to + dt.timedelta(days=1))
        q &= Q(network_timestamp__lt=end) | Q(network_timestamp__isnull=True, captured_at__lt=end)
    if hold.query:
        q &= Q(text__icontains=hold.query)
    return q


def active_holds() -> QuerySet[LegalHold]:
    return LegalHold.objects.filter(released_at__isnull=True)


def held_filter(holds: QuerySet[LegalHold] | None = None) -> Q | None:
    """One filter for every active hold (None when no hold is active)."""
    combined: Q | None = None
    for hold in (holds if holds is not None else active_holds()).prefetch_related(
        "accounts", "people"
    ):
        q = hold_filter(hold)
        combined = q if combined is None else combined | q
    return combined


def held_items(held: Q) -> Exists:
    """True for a record when any version of its item matches ``held``."""
    return Exists(
        ArchivedRecord.objects.filter(
            account_id=OuterRef("account_id"),
            network=OuterRef("network"),
            remote_id=OuterRef("remote_id"),
        ).filter(held)
    )


def records_under_hold(
    record_qs: QuerySet[ArchivedRecord], *, holds: QuerySet[LegalHold] | None = None
) -> QuerySet[ArchivedRecord]:
    """The records of ``record_qs`` an active hold (or one of ``holds``) covers."""
    held = held_filter(holds)
    if held is None:
        return record_qs.none()
    return record_qs.filter(held_items(held))


def is_held(record: ArchivedRecord) -> bool:
    return records_under_hold(ArchivedRecord.objects.filter(pk=record.pk)).exists()


def expired_records(record_class: RecordClass, cut: dt.datetime) -> QuerySet[ArchivedRecord]:
    """Records of a class whose content has not been disposed of, captured at or before
    ``cut``, and whose item has no version captured after it."""
    newer = ArchivedRecord.objects.filter(
        account_id=OuterRef("account_id"),
        network=OuterRef("network"),
        remote_id=OuterRef("remote_id"),
        captured_at__gt=cut,
    )
    return ArchivedRecord.objects.filter(
        record_class=record_class.code, captured_at__lte=cut, disposal__isnull=True
    ).exclude(Exists(newer))


# --------------------------------------------------------------------------- for pages and API


def record_classes(person: Person) -> QuerySet[RecordClass]:
    require(person, Perm.ARCHIVE_VIEW)
    return RecordClass.objects.select_related("updated_by").order_by("code")


def get_record_class(person: Person, code: str) -> RecordClass:
    require(person, Perm.ARCHIVE_VIEW)
    row = RecordClass.objects.filter(code=code).first()
    if row is None:
        raise NotFound("No such record class.")
    return row


def holds(person: Person, *, active: bool | None = None) -> QuerySet[LegalHold]:
    require(person, Perm.ARCHIVE_VIEW)
    qs = LegalHold.objects.select_related("placed_by", "released_by").prefetch_related(
        "accounts", "people"
    )
    if active is not None:
        qs = qs.filter(released_at__isnull=active)
    return qs.order_by("-placed_at", "-id")


def get_hold(person: Person, hold_id: int) -> LegalHold:
    hold = holds(person).filter(pk=hold_id).first()
    if hold is None:
        raise NotFound("No such legal hold.")
    return hold


def held_record_count(hold: LegalHold) -> int:
    return records_under_hold(
        ArchivedRecord.objects.all(), holds=LegalHold.objects.filter(pk=hold.pk)
    ).count()


def disposal_runs(person: Person) -> QuerySet[DisposalRun]:
    require(person, Perm.ARCHIVE_VIEW)
    return DisposalRun.objects.select_related("actor").defer("disposed_ids")


def get_disposal_run(person: Person, run_id: int) -> DisposalRun:
    require(person, Perm.ARCHIVE_VIEW)
    run = DisposalRun.objects.filter(pk=run_id).first()
    if run is None:
        raise NotFound("No such disposal run.")
    return run


def hold_as_dict(hold: LegalHold) -> dict[str, Any]:
    return {
        "id": hold.pk,
        "matter_name": hold.matter_name,
        "description": hold.description,
        "account_ids": sorted(a.pk for a in hold.accounts.all()),
        "person_ids": sorted(p.pk for p in hold.people.all()),
        "date_from": hold.date_from,
        "date_to": hold.date_to,
        "query": hold.query,
        "placed_by_id": hold.placed_by_id,
        "placed_at": hold.placed_at,
        "released_by_id": hold.released_by_id,
        "released_at": hold.released_at,
        "release_reason": hold.release_reason,
        "active": hold.is_active,
    }


def hold_blob_summary(hold: LegalHold) -> dict[str, Any]:
    """For the hold's page: how many attachment blobs of its records Vetline recorded, how
    many carry the legal hold in the blob store in use, how many are being changed, and
    whether that store can enforce a hold at all (the local filesystem cannot)."""
    from vetline.archive.blobs import BlobError, default_store
    from vetline.archive.models_retention import BlobHoldState, BlobHoldSyncRun, HeldBlob

    try:
        store = default_store()
        where, supported = store.where, store.legal_hold_supported
    except BlobError:
        where, supported = "", True
    links = HeldBlob.holds.through.objects.filter(legalhold_id=hold.pk)
    counts = links.aggregate(
        blobs=Count("id"),
        on=Count("id", filter=Q(heldblob__store_state=BlobHoldState.ON, heldblob__store=where)),
        pending=Count("id", filter=Q(heldblob__store_state=BlobHoldState.PENDING)),
        failing=Count("id", filter=Q(heldblob__failures__gt=0)),
    )
    last = (
        BlobHoldSyncRun.objects.exclude(finished_at__isnull=True)
        .order_by("-finished_at", "-pk")
        .values_list("finished_at", flat=True)
        .first()
    )
    return {**counts, "supported": supported, "store": where, "last_run_at": last}
