from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from vetline.accounts import actions, selectors
from vetline.accounts.models import (
    AccountKind,
    Assignment,
    Credential,
    CredentialKind,
    Network,
    OrgSettings,
    SocialAccount,
)
from vetline.core.errors import NotFound, ValidationFailed
from vetline.core.http import DbId, api_actor
from vetline.core.pagination import BoundedPagination
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Capability, Perm

router = Router(tags=["accounts"])


class AccountOut(Schema):
    id: int
    network: Network
    handle: str
    display_name: str
    kind: AccountKind
    owner_id: int
    owner_name: str
    business_unit: str
    publisher_cap: int | None
    effective_publisher_cap: int
    is_active: bool
    created_at: datetime

    @staticmethod
    def resolve_owner_name(obj: SocialAccount) -> str:
        return str(obj.owner)

    @staticmethod
    def resolve_effective_publisher_cap(obj: SocialAccount) -> int:
        return obj.effective_publisher_cap()


class AccountIn(Schema):
    network: Network
    handle: str = Field(..., min_length=1, max_length=200)
    kind: AccountKind
    owner_id: DbId
    display_name: str = Field("", max_length=200)
    business_unit: str = Field("", max_length=120)
    publisher_cap: int | None = Field(None, ge=1, le=1000)


class AccountPatch(Schema):
    display_name: str | None = Field(None, max_length=200)
    business_unit: str | None = Field(None, max_length=120)
    owner_id: DbId | None = None
    publisher_cap: int | None = Field(None, ge=1, le=1000)
    use_default_cap: bool = False
    is_active: bool | None = None


class AssignmentOut(Schema):
    id: int
    person_id: int
    person_name: str
    capability: Capability
    assigned_at: datetime

    @staticmethod
    def resolve_person_name(obj: Assignment) -> str:
        return str(obj.person)


class AssignmentIn(Schema):
    person_id: DbId
    capability: Capability


class CredentialOut(Schema):
    id: int
    kind: CredentialKind
    key_id: str
    set_by_name: str
    set_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @staticmethod
    def resolve_set_by_name(obj: Credential) -> str:
        return str(obj.set_by)


class CredentialIn(Schema):
    kind: CredentialKind
    secret: str = Field(
        ...,
        min_length=1,
        max_length=actions.MAX_SECRET_LENGTH,
        description="Write-only: it is encrypted and never returned.",
    )
    expires_at: datetime | None = None


class OrgSettingsOut(Schema):
    name: str
    default_publisher_cap: int


class OrgSettingsIn(Schema):
    default_publisher_cap: int = Field(..., ge=1, le=1000)


def _account(request: HttpRequest, account_id: DbId) -> SocialAccount:
    return selectors.get_visible_account(api_actor(request), account_id)


def _person(person_id: DbId, field: str) -> Person:
    person = Person.objects.filter(pk=person_id).first()
    if person is None:
        raise ValidationFailed("No such person.", field=field)
    return person


@router.get("", response=list[AccountOut])
@paginate(BoundedPagination)
def list_accounts(
    request: HttpRequest,
    network: Network | None = None,
    kind: AccountKind | None = None,
) -> object:
    qs = selectors.visible_accounts(api_actor(request)).select_related("owner").order_by("id")
    if network:
        qs = qs.filter(network=network)
    if kind:
        qs = qs.filter(kind=kind)
    return qs


@router.post("", response={201: AccountOut})
def register_account(request: HttpRequest, payload: AccountIn) -> Status[SocialAccount]:
    actor = api_actor(request)
    require(actor, Perm.ACCOUNTS_MANAGE)
    account = actions.register_account(
        actor=actor,
        network=payload.network,
        handle=payload.handle,
        kind=payload.kind,
        owner=_person(payload.owner_id, "owner_id"),
        display_name=payload.display_name,
        business_unit=payload.business_unit,
        publisher_cap=payload.publisher_cap,
    )
    return Status(201, account)


@router.get("/settings", response=OrgSettingsOut, tags=["organisation"])
def get_org_settings(request: HttpRequest) -> OrgSettings:
    require(api_actor(request), Perm.ACCOUNTS_MANAGE)
    return OrgSettings.load()


@router.put("/settings", response=OrgSettingsOut, tags=["organisation"])
def put_org_settings(request: HttpRequest, payload: OrgSettingsIn) -> OrgSettings:
    return actions.set_org_publisher_cap(
        actor=api_actor(request), cap=payload.default_publisher_cap
    )


@router.get("/{account_id}", response=AccountOut)
def get_account(request: HttpRequest, account_id: DbId) -> SocialAccount:
    return _account(request, account_id)


@router.patch("/{account_id}", response=AccountOut)
def update_account(request: HttpRequest, account_id: DbId, payload: AccountPatch) -> SocialAccount:
    account = _account(request, account_id)
    actor = api_actor(request)
    require(actor, Perm.ACCOUNTS_MANAGE)
    cap = payload.publisher_cap if payload.publisher_cap is not None else account.publisher_cap
    return actions.update_account(
        actor=actor,
        account=account,
        display_name=account.display_name if payload.display_name is None else payload.display_name,
        business_unit=account.business_unit
        if payload.business_unit is None
        else payload.business_unit,
        owner=account.owner if payload.owner_id is None else _person(payload.owner_id, "owner_id"),
        publisher_cap=None if payload.use_default_cap else cap,
        is_active=account.is_active if payload.is_active is None else payload.is_active,
    )


@router.get("/{account_id}/assignments", response=list[AssignmentOut])
def list_assignments(request: HttpRequest, account_id: DbId) -> object:
    return _account(request, account_id).assignments.select_related("person")


@router.post("/{account_id}/assignments", response={201: AssignmentOut})
def add_assignment(
    request: HttpRequest, account_id: DbId, payload: AssignmentIn
) -> Status[Assignment]:
    account = _account(request, account_id)
    actor = api_actor(request)
    require(actor, Perm.ACCOUNTS_MANAGE)
    assignment = actions.assign_person(
        actor=actor,
        account=account,
        person=_person(payload.person_id, "person_id"),
        capability=payload.capability,
    )
    return Status(201, assignment)


@router.delete("/{account_id}/assignments/{assignment_id}", response={204: None})
def remove_assignment(request: HttpRequest, account_id: DbId, assignment_id: DbId) -> Status[None]:
    account = _account(request, account_id)
    require(api_actor(request), Perm.ACCOUNTS_MANAGE)
    assignment = account.assignments.filter(pk=assignment_id).select_related("person").first()
    if assignment is None:
        raise NotFound("No such assignment.")
    actions.remove_assignment(actor=api_actor(request), assignment=assignment)
    return Status(204, None)


@router.get("/{account_id}/credentials", response=list[CredentialOut], tags=["credentials"])
def list_credentials(request: HttpRequest, account_id: DbId) -> object:
    account = _account(request, account_id)
    require(api_actor(request), Perm.CREDENTIALS_MANAGE)
    return account.credentials.select_related("set_by")


@router.post("/{account_id}/credentials", response={201: CredentialOut}, tags=["credentials"])
def set_credential(
    request: HttpRequest, account_id: DbId, payload: CredentialIn
) -> Status[Credential]:
    account = _account(request, account_id)
    credential = actions.set_credential(
        actor=api_actor(request),
        account=account,
        kind=payload.kind,
        secret=payload.secret,
        expires_at=payload.expires_at,
    )
    return Status(201, credential)


@router.delete(
    "/{account_id}/credentials/{credential_id}", response={204: None}, tags=["credentials"]
)
def revoke_credential(request: HttpRequest, account_id: DbId, credential_id: DbId) -> Status[None]:
    account = _account(request, account_id)
    require(api_actor(request), Perm.CREDENTIALS_MANAGE)
    credential = account.credentials.filter(pk=credential_id).first()
    if credential is None:
        raise NotFound("No such credential.")
    actions.revoke_credential(actor=api_actor(request), credential=credential)
    return Status(204, None)
