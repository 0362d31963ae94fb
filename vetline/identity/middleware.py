from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from vetline.identity.actions import has_totp

# Paths a person who must enrol in MFA may still use: the enrolment pages themselves, sign-out,
# static files, and the health check.
_MFA_EXEMPT_PREFIXES = ("/auth/", "/static/", "/healthz")


class IdleTimeoutMiddleware:
    """Ends a web session after VETLINE_IDLE_TIMEOUT_MINUTES without a request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            now = time.time()
            last = request.session.get("vetline_last_seen")
            limit = settings.VETLINE_IDLE_TIMEOUT_MINUTES * 60
            if last is not None and now - float(last) > limit:
                logout(request)
                messages.info(request, "You were signed out after a period of inactivity.")
                if request.path.startswith("/api/"):
                    return JsonResponse({"detail": "Session expired."}, status=401)
                return redirect(f"{reverse('account_login')}?{urlencode({'next': request.path})}")
            request.session["vetline_last_seen"] = now
        return self.get_response(request)


class MfaEnrolmentMiddleware:
    """Anyone whose roles can publish, approve, administer, export or hold legal matters must
    enrol in TOTP before doing anything else."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(_MFA_EXEMPT_PREFIXES)
            and user.mfa_required
            and not self._enrolled(request, user)
        ):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {
                        "detail": "Two-factor enrolment is required for your role.",
                        "code": "mfa_enrolment_required",
                    },
                    status=403,
                )
            return redirect("/auth/2fa/totp/activate/")
        return self.get_response(request)

    @staticmethod
    def _enrolled(request: HttpRequest, user: object) -> bool:
        # Cache the positive answer in the session: enrolment is only ever removed through
        # allauth views, which live under /auth/ and reset the flag below.
        if request.session.get("vetline_mfa_ok"):
            return True
        ok = has_totp(user)  # type: ignore[arg-type]
        if ok:
            request.session["vetline_mfa_ok"] = True
        return ok
