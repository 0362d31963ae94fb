from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.http import HttpRequest
from django.utils import timezone

from vetline.identity.actions import record_failed_sign_in
from vetline.identity.models import Person


class VetlineAccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]
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

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        email = str(credentials.get("email") or credentials.get("username") or "")
        record_failed_sign_in(identifier=email)
