"""Searching the archive, and what searching writes: the audit events of every search and every
record viewed, and saved searches. Pages and the API call these; both get the same checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from django.db import IntegrityError, transaction

from vetline.accounts.models import Network
from vetline.archive.models import ArchivedRecord, Direction, RecordKind
from vetline.archive.models_search import SavedSearch
from vetline.archive.search import Node, QueryError, parse, to_text
from vetline.archive.search_backends import (
    DEFAULT_PAGE,
    Cursor,
    Page,
    Plan,
    SearchFilters,
    search_page,
)
from vetline.audit.actions import record as audit
from vetline.core.errors import Conflict, NotFound, ValidationFailed
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm

VERDICTS: Final = ("pass", "info", "warn", "escalate", "block", "error")
FILTER_KEYS: Final = (
    "account", "person", "network", "kind", "direction", "since", "until", "verdict", "flagged",
    "on_hold", "handle",
)  # fmt: skip
TRUE_VALUES: Final = ("1", "true", "on", "yes")
MAX_SAVED_PER_PERSON: Final = 200
MAX_CONVERSATION: Final = 2000


def _date(raw: str, *, end: bool) -> dt.datetime:
    """A date (a whole day, UTC: ``until`` includes it) or an ISO datetime with a zone."""
    try:
        if len(raw) == 10:
            day = dt.date.fromisoformat(raw)
            start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            return start + dt.timedelta(days=1) if end else start
        value = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise QueryError(f"“{raw[:40]}” is not a date (YYYY-MM-DD).") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def _choice(raw: str, allowed: Any, label: str) -> str:
    if raw and raw not in {str(v) for v in allowed}:
        raise QueryError(f"Unknown {label}: “{raw[:40]}”.")
    return raw


def _id(raw: str, label: str) -> int | None:
    try:
        value = int(raw) if raw else None
    except ValueError as exc:
        raise QueryError(f"The {label} must be a number.") from exc
    if value is not None and not 0 < value < 2**63:
        raise QueryError(f"The {label} must be a number.")
    return value


def parse_filters(params: Mapping[str, Any]) -> SearchFilters:
    """The filters from request parameters (query string, form or saved search); blanks are
    ignored, anything invalid raises QueryError."""

    def get(key: str) -> str:
        value = params.get(key)
        return "" if value is None else str(value).strip()

    account_id = _id(get("account"), "account")
    person_id = _id(get("person"), "person")
    handle = get("handle")
    if len(handle) > 300:
        raise QueryError("A handle is at most 300 characters.")
    since = _date(get("since"), end=False) if get("since") else None
    until = _date(get("until"), end=True) if get("until") else None
    if since and until and since >= until:
        raise QueryError("The date range is empty: “since” must come before “until”.")
    return SearchFilters(
        account_id=account_id,
        person_id=person_id,
        network=_choice(get("network"), Network.values, "network"),
        kind=_choice(get("kind"), RecordKind.values, "kind"),
        direction=_choice(get("direction"), Direction.values, "direction"),
        since=since,
        until=until,
        verdict=_choice(get("verdict"), VERDICTS, "verdict"),
        flagged=get("flagged").lower() in TRUE_VALUES,
        handle=handle,
        on_hold=get("on_hold").lower() in TRUE_VALUES,
    )


@dataclass(slots=True)
class SearchResult:
    query: str
    node: Node | None
    filters: SearchFilters
    page: Page
    cursor: Cursor | None = None
    audit_event_id: int = 0


def run_search(
    *,
    actor: Person,
    query: str,
    filters: SearchFilters,
    after: str = "",
    limit: int = DEFAULT_PAGE,
    plan: Plan = Plan.AUTO,
) -> SearchResult:
    """Run one page of a search and audit it (``archive.search.run``, with the query, the
    filters and the page asked for). Raises ValidationFailed (422) on a malformed query."""
    require(actor, Perm.ARCHIVE_VIEW)
    try:
        node = parse(query)
        cursor = Cursor.decode(after) if after else None
    except QueryError as exc:
        raise ValidationFailed(str(exc), field="q") from exc
    with transaction.atomic():
        result_page = search_page(node, filters, after=cursor, limit=limit, plan=plan)
        event = audit(
            action="archive.search.run",
            actor=actor,
            object_type="archive.search",
            after={
                "query": query,
                "parsed": to_text(node) if node is not None else "",
                "filters": filters.as_dict(),
                "after": after,
                "results": len(result_page.items),
                "partial": result_page.partial,
            },
        )
    return SearchResult(query, node, filters, result_page, cursor, event.pk)


def audit_record_view(*, actor: Person, record: ArchivedRecord) -> None:
    """Audit that ``actor`` saw one record (``archive.record.view``)."""
    with transaction.atomic():
        audit(action="archive.record.view", actor=actor, obj=record)


@dataclass(slots=True)
class ConversationItem:
    """One item of a conversation with all its versions, oldest first."""

    versions: list[ArchivedRecord]

    @property
    def first(self) -> ArchivedRecord:
        return self.versions[0]

    @property
    def latest(self) -> ArchivedRecord:
        return self.versions[-1]

    @property
    def deleted(self) -> bool:
        return any(v.kind == RecordKind.DELETION for v in self.versions)

    @property
    def edited(self) -> bool:
        return any(v.kind == RecordKind.EDIT for v in self.versions) or len(self.versions) > 1


def view_conversation(
    *, actor: Person, account_id: int, conversation_id: str, thread_id: str = ""
) -> list[ConversationItem]:
    """Every record of a conversation on one account (optionally one thread), grouped by item
    with every version, in the order the items were first posted. Audited as one
    ``archive.record.view`` event naming every record shown."""
    require(actor, Perm.ARCHIVE_VIEW)
    if not conversation_id:
        raise NotFound("No such conversation.")
    qs = ArchivedRecord.objects.filter(account_id=account_id, conversation_id=conversation_id)
    if thread_id:
        qs = qs.filter(thread_id=thread_id)
    rows = list(qs.select_related("account").defer("raw_payload").order_by("id")[:MAX_CONVERSATION])
    if not rows:
        raise NotFound("No such conversation.")
    items: dict[tuple[str, str], ConversationItem] = {}
    for row in rows:
        key = (row.network, row.remote_id)
        items.setdefault(key, ConversationItem([])).versions.append(row)
    ordered = list(items.values())
    for item in ordered:
        item.versions.sort(key=lambda v: v.version)
    far_past = dt.datetime.min.replace(tzinfo=dt.UTC)
    ordered.sort(
        key=lambda i: (i.first.network_timestamp or i.first.captured_at or far_past, i.first.pk)
    )
    with transaction.atomic():
        audit(
            action="archive.record.view",
            actor=actor,
            object_type="archive.conversation",
            object_id=f"{account_id}:{conversation_id}"[:300],
            object_repr=f"conversation {conversation_id}"[:300],
            after={
                "account_id": account_id,
                "conversation_id": conversation_id,
                "thread_id": thread_id,
                "record_ids": [r.pk for r in rows],
                "truncated": len(rows) == MAX_CONVERSATION,
            },
        )
    return ordered


# --- Saved searches ----------------------------------------------------------------------------


def saved_searches(person: Person) -> list[SavedSearch]:
    require(person, Perm.ARCHIVE_VIEW)
    return list(SavedSearch.objects.filter(owner=person).order_by("name", "id"))


def save_search(*, actor: Person, name: str, query: str, filters: Mapping[str, Any]) -> SavedSearch:
    """Save a search under a name for ``actor`` (audited ``archive.search.save``). The query and
    filters are validated now, so a saved search always runs."""
    require(actor, Perm.ARCHIVE_VIEW)
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed("Give the search a name of 1 to 100 characters.", field="name")
    try:
        parse(query)
        clean = parse_filters(filters).as_dict()
    except QueryError as exc:
        raise ValidationFailed(str(exc), field="q") from exc
    for key in ("account", "person"):  # saved under the names the page and API use
        if f"{key}_id" in clean:
            clean[key] = clean.pop(f"{key}_id")
    with transaction.atomic():
        if SavedSearch.objects.filter(owner=actor).count() >= MAX_SAVED_PER_PERSON:
            raise ValidationFailed(f"You can keep at most {MAX_SAVED_PER_PERSON} saved searches.")
        try:
            with transaction.atomic():
                saved = SavedSearch.objects.create(
                    owner=actor, name=name, query=query, filters=clean
                )
        except IntegrityError as exc:
            raise Conflict("You already have a saved search with this name.", field="name") from exc
        audit(
            action="archive.search.save",
            actor=actor,
            obj=saved,
            after={"name": name, "query": query, "filters": clean},
        )
    return saved


def delete_saved_search(*, actor: Person, saved_id: int) -> None:
    """Delete one of the actor's own saved searches (audited ``archive.search.delete``).
    Someone else's is "not found"."""
    require(actor, Perm.ARCHIVE_VIEW)
    if not 0 < saved_id < 2**63:
        raise NotFound("No such saved search.")
    with transaction.atomic():
        saved = SavedSearch.objects.select_for_update().filter(pk=saved_id, owner=actor).first()
        if saved is None:
            raise NotFound("No such saved search.")
        audit(
            action="archive.search.delete",
            actor=actor,
            obj=saved,
            before={"name": saved.name, "query": saved.query, "filters": saved.filters},
        )
        saved.delete()
