"""The REST API root: authentication, error mapping and the routers of every app.

Pages and the API call the same actions, so the same permission checks apply to both.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer, SessionAuth

from vetline.core.errors import DomainError, Forbidden
from vetline.identity.actions import authenticate_token, has_totp
from vetline.identity.models import Person

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class TokenAuth(HttpBearer):
    """Personal API tokens: ``Authorization: Bearer vtl_…``. A read-scoped token may only
    read; a person whose roles require MFA must still be enrolled for the token to work."""

    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str) -> Person | None:
        row = authenticate_token(token)
        if row is None:
            return None
        if row.scope == "read" and request.method not in SAFE_METHODS:
            raise Forbidden("This API token is read-only.", code="token_read_only")
        person = row.person
        if person.mfa_required and not has_totp(person):
            return None
        request.user = person
        request.api_token = row  # type: ignore[attr-defined]
        return person


class ActiveSessionAuth(SessionAuth):
    """The signed-in browser session (with CSRF protection on writes)."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if user is not None and not user.is_active:
            return None
        return user


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_lone_surrogates(k): _replace_lone_surrogates(v) for k, v in value.items()}
    return value


# Screening must cope with any text. Elsewhere a lone surrogate is refused as invalid input
# (the archive's ingest quarantines the item with its bytes kept exactly as received).
SURROGATE_TOLERANT_PATHS = frozenset({"/api/screen"})


class VetlineParser(Parser):
    """JSON may carry lone surrogates (``"\\ud800"``), which are not Unicode text and which
    pydantic refuses. For screening, each becomes U+FFFD, one character for one, so character
    offsets in the response still index the text as sent."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise NinjaValidationError(
                [{"loc": ("body",), "msg": f"The body is not valid JSON: {exc}"}]
            ) from exc
        if request.path in SURROGATE_TOLERANT_PATHS:
            return _replace_lone_surrogates(data)  # type: ignore[no-any-return]
        return data  # type: ignore[no-any-return]


api = NinjaAPI(
    parser=VetlineParser(),
    title="Vetline API",
    version="1",
    description=(
        "Governance and compliance for corporate social media. Authenticate with a personal "
        "API token (`Authorization: Bearer vtl_…`) created under *API tokens*."
    ),
    auth=[TokenAuth(), ActiveSessionAuth()],
    docs_url="/docs",
    urls_namespace="api",
)


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
    if exc.field:
        body["field"] = exc.field
    return api.create_response(request, body, status=exc.status)


@api.exception_handler(NinjaValidationError)
def _invalid_input(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = [
        {"field": ".".join(str(p) for p in e.get("loc", ())[1:]) or None, "message": e.get("msg")}
        for e in exc.errors
    ]
    body: dict[str, Any] = {
        "detail": "; ".join(
            f"{e['field']}: {e['message']}" if e["field"] else str(e["message"]) for e in errors
        )
        or "Invalid input.",
        "code": "validation_failed",
        "errors": errors,
    }
    if errors and errors[0]["field"]:
        body["field"] = errors[0]["field"]
    return api.create_response(request, body, status=422)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": "Not found.", "code": "not_found"}, status=404)


def _register_routers() -> None:
    from vetline.accounts.api import router as accounts_router
    from vetline.archive.api import router as archive_router
    from vetline.archive.export_api import export_router
    from vetline.archive.retention_api import router as retention_router
    from vetline.archive.search_api import router as search_router
    from vetline.audit.api import router as audit_router
    from vetline.connectors.api import router as connectors_router
    from vetline.identity.api import router as identity_router
    from vetline.importers.api import router as importers_router
    from vetline.policy.api import router as policy_router
    from vetline.profiles.api import router as profiles_router
    from vetline.publishing.api import router as publishing_router
    from vetline.supervision.api import router as supervision_router

    api.add_router("/", identity_router)
    api.add_router("/accounts", accounts_router)
    api.add_router("/audit", audit_router)
    api.add_router("/", policy_router)
    api.add_router("/archive", archive_router)
    api.add_router("/archive/export", export_router)
    api.add_router("/archive/retention", retention_router)
    api.add_router("/archive/search", search_router)
    api.add_router("/imports", importers_router)
    api.add_router("/connectors", connectors_router)
    api.add_router("/publishing", publishing_router)
    api.add_router("/profiles", profiles_router)
    api.add_router("/supervision", supervision_router)


_register_routers()
