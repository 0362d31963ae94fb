from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from vetline.core.context import RequestContext, use_context
from vetline.core.errors import DomainError

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR is what the server saw. Behind proxies, operators set
    # VETLINE_TRUSTED_PROXY_COUNT (docs/operations.md): only the entries the trusted proxies
    # appended to X-Forwarded-For are believed.
    from django.conf import settings

    proxies = settings.VETLINE_TRUSTED_PROXY_COUNT
    if proxies > 0:
        hops = [h.strip() for h in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= proxies:
            return hops[-proxies][:64]
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


class RejectNulMiddleware:
    """NUL characters have no place in any input Vetline takes, and PostgreSQL text columns
    refuse them; answer 400 before they reach a query or a form."""

    _CHECKED_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._has_nul(request):
            message = "The request contains a NUL (0x00) character, which is not allowed."
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message, "code": "invalid_character"}, status=400)
            return HttpResponse(message, status=400, content_type="text/plain")
        return self.get_response(request)

    def _has_nul(self, request: HttpRequest) -> bool:
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query or "\x00" in request.path:
            return True
        content_type = request.META.get("CONTENT_TYPE", "")
        if request.method in ("POST", "PUT", "PATCH") and content_type.startswith(
            self._CHECKED_TYPES
        ):
            body = request.body
            return b"\x00" in body or b"\\u0000" in body or b"%00" in body
        return False
