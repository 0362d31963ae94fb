"""The archive search API: full-text search with filters and keyset pages, saved searches."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from vetline.archive import search_actions
from vetline.archive.models_search import SavedSearch
from vetline.archive.search import QueryError, highlight
from vetline.archive.search_backends import DEFAULT_PAGE, MAX_PAGE
from vetline.core.errors import ValidationFailed
from vetline.core.http import MAX_DB_ID, DbId, api_actor

router = Router(tags=["archive search"])


class SearchQuery(Schema):
    q: str = Field("", max_length=500, description='Query: words, "phrases", AND/OR/NOT, pre*')
    account: DbId | None = None
    person: DbId | None = Field(
        None, description="A person: the personal-for-business accounts they own"
    )
    network: str = Field("", max_length=20)
    kind: str = Field("", max_length=20)
    direction: str = Field("", max_length=10)
    since: str = Field("", max_length=40, description="YYYY-MM-DD or ISO 8601 (inclusive)")
    until: str = Field("", max_length=40, description="YYYY-MM-DD (inclusive) or ISO 8601")
    verdict: str = Field("", max_length=20, description="Latest screening verdict")
    flagged: bool = Field(False, description="Latest screening verdict is not “pass”")
    handle: str = Field("", max_length=300, description="Author or participant handle")
    on_hold: bool = Field(False, description="Only records an active legal hold covers")
    after: str = Field("", max_length=200, description="The `next` cursor of the last page")
    limit: int = Field(DEFAULT_PAGE, ge=1, le=MAX_PAGE)


class HitOut(Schema):
    id: int
    network: str
    account_id: int
    remote_id: str
    version: int
    kind: str
    direction: str
    author_handle: str
    conversation_id: str
    thread_id: str
    captured_at: datetime
    network_timestamp: datetime | None
    text: str
    snippet: list[tuple[str, bool]]
    log_index: int


class SearchOut(Schema):
    items: list[HitOut]
    next: str | None
    partial: bool = Field(
        False,
        description="The page stopped at the work bound of one page before it was full; "
        "follow `next` for more",
    )


FilterInt = Annotated[int, Field(ge=-MAX_DB_ID, le=MAX_DB_ID)]


class SavedSearchIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    q: str = Field("", max_length=500)
    filters: dict[str, str | FilterInt | bool] = Field(default_factory=dict, max_length=20)


class SavedSearchOut(Schema):
    id: int
    name: str
    query: str
    filters: dict[str, Any]
    created_at: datetime


@router.get("", response=SearchOut, summary="Search the archive (keyset pages)")
def search(request: HttpRequest, params: Query[SearchQuery]) -> dict[str, Any]:
    try:
        filters = search_actions.parse_filters(params.dict())
    except QueryError as exc:
        raise ValidationFailed(str(exc)) from exc
    result = search_actions.run_search(
        actor=api_actor(request),
        query=params.q,
        filters=filters,
        after=params.after,
        limit=params.limit,
    )
    items = [
        {
            "id": r.pk,
            "network": r.network,
            "account_id": r.account_id,
            "remote_id": r.remote_id,
            "version": r.version,
            "kind": r.kind,
            "direction": r.direction,
            "author_handle": r.author_handle,
            "conversation_id": r.conversation_id,
            "thread_id": r.thread_id,
            "captured_at": r.captured_at,
            "network_timestamp": r.network_timestamp,
            "text": r.text,
            "snippet": highlight(r.text, result.node),
            "log_index": r.log_index,
        }
        for r in result.page.items
    ]
    nxt = result.page.next_cursor
    return {
        "items": items,
        "next": nxt.encode() if nxt else None,
        "partial": result.page.partial,
    }


@router.get("/saved", response=list[SavedSearchOut], summary="My saved searches")
def list_saved(request: HttpRequest) -> list[SavedSearch]:
    return search_actions.saved_searches(api_actor(request))


@router.post("/saved", response={201: SavedSearchOut}, summary="Save a search")
def create_saved(request: HttpRequest, body: SavedSearchIn) -> Status[SavedSearch]:
    saved = search_actions.save_search(
        actor=api_actor(request), name=body.name, query=body.q, filters=body.filters
    )
    return Status(201, saved)


@router.delete("/saved/{saved_id}", response={204: None}, summary="Delete a saved search")
def delete_saved(request: HttpRequest, saved_id: DbId) -> Status[None]:
    search_actions.delete_saved_search(actor=api_actor(request), saved_id=saved_id)
    return Status(204, None)
