"""The import API: upload an export as the request body, then follow the job.

    curl -X POST -H "Authorization: Bearer vtl_…" -H "Content-Type: application/zip" \
         --data-binary @twitter-archive.zip \
         "https://vetline.example/api/imports?format=x-archive&account_id=3&file_name=x.zip"
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from vetline.core.http import DbId, api_actor
from vetline.importers import actions

router = Router(tags=["imports"])
_CHUNK = 1024 * 1024


class StartParams(Schema):
    format: str = Field(..., max_length=40)
    account_id: DbId
    file_name: str = Field("upload", max_length=200)


class ImportOut(Schema):
    id: str
    state: str
    percent: int
    format: str
    account_id: int
    file_name: str
    size: int
    created_at: str
    finished_at: str
    counts: dict[str, int]
    stops: list[str]
    not_archived: dict[str, int]
    problems: list[dict[str, Any]]
    error: str


def _body(request: HttpRequest) -> Iterator[bytes]:
    while chunk := request.read(_CHUNK):
        yield chunk


@router.post("", response={202: ImportOut}, summary="Upload an export and start importing it")
def start(request: HttpRequest, params: Query[StartParams]) -> Status[Any]:
    job = actions.start_import(
        actor=api_actor(request),
        account_id=params.account_id,
        fmt=params.format,
        file_name=params.file_name,
        chunks=_body(request),
    )
    return Status(202, actions.job_as_dict(job))


@router.get("/{import_id}", response=ImportOut, summary="An import's progress and outcome")
def status(request: HttpRequest, import_id: str) -> Any:
    return actions.job_as_dict(actions.get_import(actor=api_actor(request), import_id=import_id))
