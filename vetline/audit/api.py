from datetime import date, datetime
from typing import Any, Literal

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Schema
from ninja.pagination import paginate

from vetline.audit import actions as audit_actions
from vetline.audit.selectors import AuditFilter, export_csv, export_json, filter_events
from vetline.core.http import api_actor
from vetline.core.pagination import BoundedPagination
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm

router = Router(tags=["audit"])


class AuditEventOut(Schema):
    id: int
    occurred_at: datetime
    action: str
    actor_id: int | None
    actor_name: str
    object_type: str
    object_id: str
    object_repr: str
    before: Any
    after: Any
    ip: str | None
    user_agent: str
    request_id: str
    channel: str


class AuditQuery(Schema):
    person: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def to_filter(self) -> AuditFilter:
        return AuditFilter(**self.dict())


@router.get("/events", response=list[AuditEventOut])
@paginate(BoundedPagination)
def list_events(request: HttpRequest, filters: Query[AuditQuery]) -> object:
    require(api_actor(request), Perm.AUDIT_VIEW)
    return filter_events(filters.to_filter())


@router.get("/export", response={200: None}, summary="Export filtered events as CSV or JSON")
def export_events(
    request: HttpRequest, filters: Query[AuditQuery], format: Literal["csv", "json"] = "csv"
) -> StreamingHttpResponse:
    return stream_export(actor=api_actor(request), f=filters.to_filter(), fmt=format)


def stream_export(*, actor: Person, f: AuditFilter, fmt: str) -> StreamingHttpResponse:
    """Shared by the API and the audit page: checks permission, audits the export, streams."""
    events = audit_actions.export_events(actor=actor, f=f, fmt=fmt)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    if fmt == "json":
        response = StreamingHttpResponse(export_json(events), content_type="application/json")
    else:
        response = StreamingHttpResponse(export_csv(events), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="vetline-audit-{stamp}.{fmt}"'
    return response
