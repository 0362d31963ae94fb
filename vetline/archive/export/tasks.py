"""The background export job (Huey). Takes the export id, never objects."""

from __future__ import annotations

from huey.contrib.djhuey import db_task

from vetline.core.context import RequestContext, use_context


@db_task()
def run_export_task(export_id: str) -> None:
    from vetline.archive.export.actions import run_export

    with use_context(RequestContext(channel="job")):
        run_export(export_id=export_id)
