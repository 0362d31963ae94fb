"""The background import job (Huey). Takes the import id, never objects."""

from __future__ import annotations

from huey.contrib.djhuey import db_task

from vetline.core.context import RequestContext, use_context


@db_task()
def run_import_task(import_id: str) -> None:
    from vetline.importers.actions import run_import

    with use_context(RequestContext(channel="job")):
        run_import(import_id=import_id)
