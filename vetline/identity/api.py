from datetime import datetime

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from vetline.core.errors import NotFound
from vetline.core.http import DbId, api_actor
from vetline.core.pagination import BoundedPagination
from vetline.identity import actions
from vetline.identity.models import ApiToken, Person, TokenScope
from vetline.identity.permissions import require
from vetline.identity.roles import Perm, Role

router = Router(tags=["people"])


class PersonOut(Schema):
    id: int
    email: str
    full_name: str
    title: str
    business_unit: str
    is_active: bool
    roles: list[Role]
    mfa_required: bool

    @staticmethod
    def resolve_roles(obj: Person) -> list[Role]:
        return sorted(obj.roles)


class MeOut(PersonOut):
    permissions: list[str]

    @staticmethod
    def resolve_permissions(obj: Person) -> list[str]:
        return sorted(p.value for p in obj.permissions)


class PersonIn(Schema):
    email: str = Field(..., max_length=254)
    full_name: str = Field(..., min_length=1, max_length=200)
    title: str = Field("", max_length=200)
    business_unit: str = Field("", max_length=120)
    roles: list[Role] = Field(default_factory=list, max_length=9)


class RoleIn(Schema):
    role: Role


class OffboardIn(Schema):
    reason: str = Field(..., min_length=1, max_length=2000)


class OffboardOut(Schema):
    roles: list[str]
    assignments: list[dict[str, object]]
    api_tokens: list[str]
    mfa_authenticators: int
    sessions_ended: bool
    accounts_still_owned: list[str]


class TokenIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    scope: TokenScope = TokenScope.READ
    expires_in_days: int = Field(90, ge=1, le=365)


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    scope: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    status: str


class IssuedTokenOut(TokenOut):
    token: str = Field(..., description="Shown once. Store it now; Vetline keeps only a hash.")


def _person(request: HttpRequest, person_id: DbId) -> Person:
    require(api_actor(request), Perm.PEOPLE_VIEW)
    return get_object_or_404(Person, pk=person_id)


@router.get("/me", response=MeOut, summary="The signed-in person, roles and permissions")
def me(request: HttpRequest) -> Person:
    return api_actor(request)


@router.get("/people", response=list[PersonOut])
@paginate(BoundedPagination)
def list_people(request: HttpRequest, active: bool | None = None) -> object:
    require(api_actor(request), Perm.PEOPLE_VIEW)
    qs = Person.objects.prefetch_related("role_grants").order_by("full_name", "id")
    if active is not None:
        qs = qs.filter(is_active=active)
    return qs


@router.post("/people", response={201: PersonOut})
def create_person(request: HttpRequest, payload: PersonIn) -> Status[Person]:
    person = actions.create_person(actor=api_actor(request), **payload.dict())
    return Status(201, person)


@router.get("/people/{person_id}", response=PersonOut)
def get_person(request: HttpRequest, person_id: DbId) -> Person:
    return _person(request, person_id)


@router.post("/people/{person_id}/roles", response={201: PersonOut})
def grant_role(request: HttpRequest, person_id: DbId, payload: RoleIn) -> Status[Person]:
    person = _person(request, person_id)
    actions.grant_role(actor=api_actor(request), person=person, role=payload.role)
    return Status(201, person)


@router.delete("/people/{person_id}/roles/{role}", response={204: None})
def revoke_role(request: HttpRequest, person_id: DbId, role: Role) -> Status[None]:
    person = _person(request, person_id)
    actions.revoke_role(actor=api_actor(request), person=person, role=role)
    return Status(204, None)


@router.post("/people/{person_id}/offboard", response=OffboardOut)
def offboard(request: HttpRequest, person_id: DbId, payload: OffboardIn) -> object:
    person = _person(request, person_id)
    return actions.offboard_person(actor=api_actor(request), person=person, reason=payload.reason)


@router.post("/people/{person_id}/unlock", response=PersonOut)
def unlock(request: HttpRequest, person_id: DbId) -> Person:
    person = _person(request, person_id)
    actions.unlock_person(actor=api_actor(request), person=person)
    return person


@router.post("/people/{person_id}/signout", response={204: None})
def sign_out_everywhere(request: HttpRequest, person_id: DbId) -> Status[None]:
    """End every web session of the person (their API tokens are revoked separately)."""
    person = _person(request, person_id)
    actions.sign_out_everywhere(actor=api_actor(request), person=person)
    return Status(204, None)


@router.get("/tokens", response=list[TokenOut], tags=["tokens"])
def list_tokens(request: HttpRequest) -> object:
    return ApiToken.objects.filter(person=api_actor(request))


@router.post("/tokens", response={201: IssuedTokenOut}, tags=["tokens"])
def create_token(request: HttpRequest, payload: TokenIn) -> Status[dict[str, object]]:
    issued = actions.create_api_token(actor=api_actor(request), **payload.dict())
    data = TokenOut.from_orm(issued.token).dict()
    data["token"] = issued.secret
    return Status(201, data)


@router.delete("/tokens/{token_id}", response={204: None}, tags=["tokens"])
def revoke_token(request: HttpRequest, token_id: DbId) -> Status[None]:
    token = ApiToken.objects.filter(pk=token_id, person=api_actor(request)).first()
    if token is None:
        raise NotFound("No such token.")
    actions.revoke_api_token(actor=api_actor(request), token=token)
    return Status(204, None)
