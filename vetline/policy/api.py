from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status

from vetline.core.http import DbId, api_actor
from vetline.identity.permissions import require
from vetline.identity.roles import Perm
from vetline.policy import actions, selectors
from vetline.policy.engine import Scope
from vetline.policy.models import Policy, PolicyVersion

router = Router(tags=["screening"])


class ScreenIn(Schema):
    text: str = Field(..., max_length=selectors.MAX_SCREEN_CHARS)
    scope: Scope = Scope.OUTBOUND_POST
    policy: str | None = Field(
        None, max_length=100, description="Policy name; the organisation default if omitted."
    )
    rules: list[str] | None = Field(
        None, max_length=200, description="Only these rule ids (to test a rule)."
    )


class HitOut(Schema):
    rule_id: str
    kind: str
    severity: str
    policy: dict[str, Any]
    start: int
    end: int
    matched_text: str
    explanation: str
    draft: bool
    details: dict[str, Any]


class ScreenOut(Schema):
    policy: dict[str, Any]
    scope: str
    verdict: str = Field(..., description="pass, info, warn, escalate or block")
    hits: list[HitOut]
    signals: dict[str, Any]


class PolicyOut(Schema):
    name: str
    description: str
    is_default: bool
    current_version: int

    @staticmethod
    def resolve_current_version(obj: Policy) -> int:
        return obj.current_version().number


class VersionOut(Schema):
    number: int
    note: str
    spec_sha256: str
    created_at: datetime
    created_by: str | None

    @staticmethod
    def resolve_created_by(obj: PolicyVersion) -> str | None:
        return str(obj.created_by) if obj.created_by else None


class VersionIn(Schema):
    spec_yaml: str = Field(..., max_length=actions.MAX_YAML_CHARS)
    note: str = Field(..., min_length=1, max_length=500)
    based_on: DbId | None = None


class PolicyIn(Schema):
    spec_yaml: str = Field(..., max_length=actions.MAX_YAML_CHARS)


@router.post("/screen", response=ScreenOut, summary="Screen a text against a policy")
def screen(request: HttpRequest, payload: ScreenIn) -> dict[str, Any]:
    api_actor(request)
    result = selectors.screen_text(
        text=payload.text, scope=payload.scope, policy=payload.policy, rule_ids=payload.rules
    )
    return result.as_dict()


def _viewer(request: HttpRequest) -> None:
    require(api_actor(request), Perm.POLICY_VIEW)


@router.get("/policies", response=list[PolicyOut], tags=["policies"])
def list_policies(request: HttpRequest) -> Any:
    _viewer(request)
    return Policy.objects.all()


@router.post("/policies", response={201: PolicyOut}, tags=["policies"])
def import_policy(request: HttpRequest, payload: PolicyIn) -> Status[Policy]:
    return Status(
        201,
        actions.create_policy(
            actor=api_actor(request), spec_yaml=payload.spec_yaml, note="Imported"
        ),
    )


@router.get("/policies/{name}", response=PolicyOut, tags=["policies"])
def get_policy(request: HttpRequest, name: str) -> Policy:
    _viewer(request)
    return selectors.get_policy(name)


@router.get("/policies/{name}/versions", response=list[VersionOut], tags=["policies"])
def list_versions(request: HttpRequest, name: str) -> Any:
    _viewer(request)
    return selectors.get_policy(name).versions.select_related("created_by")


@router.post("/policies/{name}/versions", response={201: VersionOut}, tags=["policies"])
def save_version(request: HttpRequest, name: str, payload: VersionIn) -> Status[PolicyVersion]:
    version = actions.save_policy_version(
        actor=api_actor(request),
        policy=selectors.get_policy(name),
        spec_yaml=payload.spec_yaml,
        note=payload.note,
        based_on=payload.based_on,
    )
    return Status(201, version)


@router.get(
    "/policies/{name}/versions/{number}.yaml",
    tags=["policies"],
    response={200: None},
    summary="Export one version as YAML",
)
def export_version(request: HttpRequest, name: str, number: DbId) -> HttpResponse:
    _viewer(request)
    from vetline.policy.views import yaml_download

    return yaml_download(selectors.get_version(name, number))
