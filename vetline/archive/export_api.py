"""The export API: start an export, follow its progress, download the package (zip)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from django.http import FileResponse, HttpRequest
from ninja import Field, Router, Schema, Status

from vetline.archive.export import actions
from vetline.archive.export.selection import (
    MAX_EXPLICIT_IDS,
    MAX_QUERY_CHARS,
    selection_from_input,
)
from vetline.core.http import MAX_DB_ID, DbId, api_actor

export_router = Router(tags=["archive export"])


SearchFilterValue = str | Annotated[int, Field(ge=-MAX_DB_ID, le=MAX_DB_ID)] | bool


class ExportIn(Schema):
    """Exactly one of: a legal hold (``hold_id``); a search (``query`` and/or
    ``search_filters``, as on the search page); records by account, dates, conversation or
    ids."""

    hold_id: DbId | None = None
    query: str | None = Field(None, max_length=MAX_QUERY_CHARS)
    search_filters: dict[str, SearchFilterValue] = Field(default_factory=dict, max_length=20)
    account_id: DbId | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    conversation_id: str | None = Field(None, max_length=300)
    record_ids: list[DbId] = Field(default_factory=list, max_length=MAX_EXPLICIT_IDS)


class ExportOut(Schema):
    id: str
    state: str
    percent: int
    phase: str
    selection: dict[str, Any]
    created_at: str
    finished_at: str
    counts: dict[str, int]
    manifest_sha256: str
    zip_sha256: str
    error: str
    download_url: str | None


def _out(job: actions.ExportJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "state": job.state,
        "percent": job.percent,
        "phase": job.phase,
        "selection": job.selection,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "counts": job.counts,
        "manifest_sha256": job.manifest_sha256,
        "zip_sha256": job.zip_sha256,
        "error": job.error,
        "download_url": (
            f"/api/archive/export/{job.id}/download"
            if job.state == actions.ExportState.DONE
            else None
        ),
    }


@export_router.post("", response={202: ExportOut}, summary="Start an export package")
def start(request: HttpRequest, body: ExportIn) -> Status[dict[str, Any]]:
    selection = selection_from_input(body.dict())
    job = actions.start_export(actor=api_actor(request), selection=selection)
    return Status(202, _out(job))


@export_router.get("/{export_id}", response=ExportOut, summary="An export's progress")
def status(request: HttpRequest, export_id: str) -> dict[str, Any]:
    return _out(actions.get_export(actor=api_actor(request), export_id=export_id))


@export_router.get("/{export_id}/download", summary="Download a finished export (zip)")
def download(request: HttpRequest, export_id: str) -> FileResponse:
    path = actions.open_download(actor=api_actor(request), export_id=export_id)
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
