from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from vetline.core.context import RequestContext, use_context
from vetline.core.errors import DomainError

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR is what the server saw. Behind a proxy, operators set
    # VETLINE_TRUST_X_FORWARDED_FOR (docs/operations.md) and gunicorn's forwarded-allow-ips.
    from django.conf import settings

    if settings.VETLINE_TRUST_X_FORWARDED_FOR:
        forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    remote: str | None = request.META.get("REMOTE_ADDR")
    return remote


class RequestContextMiddleware:
    """Gives every request an id and records where it came from, for the audit trail."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        ctx = RequestContext(
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:512],
            request_id=request_id,
            channel="api" if request.path.startswith("/api/") else "web",
        )
        request.request_id = request_id  # type: ignore[attr-defined]
        with use_context(ctx):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class DomainErrorMiddleware:
    """Maps domain errors escaping a page view to a readable error page with the right status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DomainError):
            return render(
                request,
                "core/error.html",
                {"status": exception.status, "message": exception.message},
                status=exception.status,
            )
        return None
