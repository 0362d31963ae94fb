from __future__ import annotations

import time
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.http import HttpRequest
from django.utils import timezone

from vetline.identity.actions import record_failed_sign_in
from vetline.identity.models import Person


class VetlineAccountAdapter(DefaultAccountAdapter):
    """People are provisioned by administrators (no self sign-up); lock-out is per person."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        super().pre_authenticate(request, **credentials)
        email = str(credentials.get("email") or credentials.get("username") or "").strip()
        person = Person.objects.filter(email__iexact=email).only("locked_until").first()
        if person is not None and person.is_locked:
            minutes = max(1, int((person.locked_until - timezone.now()).total_seconds() // 60) + 1)  # type: ignore[operator]
            raise forms.ValidationError(
                f"This account is locked after repeated failed sign-ins. Try again in "
                f"{minutes} minute(s), or ask an administrator to unlock it."
            )

    def is_reauthentication_required(self, *, app: str, **kwargs: Any) -> bool:
        """Sensitive changes (MFA) ask for the password again, except within the first minutes
        after signing in: a person forced to enrol in TOTP right after sign-in should not have
        to type the password twice."""
        from allauth.account import app_settings
        from allauth.account.internal.flows.login import get_authentication_records

        if not super().is_reauthentication_required(app=app, **kwargs):
            return False
        request = getattr(self, "request", None)
        if request is None or not request.user.is_authenticated:
            return True
        records = get_authentication_records(request, request.user)
        fresh = bool(records) and (
            time.time() - float(records[-1].get("at", 0)) < app_settings.REAUTHENTICATION_TIMEOUT
        )
        return not fresh

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        email = str(credentials.get("email") or credentials.get("username") or "")
        record_failed_sign_in(identifier=email)
