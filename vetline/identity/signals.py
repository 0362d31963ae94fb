"""Sign-in, sign-out and MFA events come from Django and allauth; each becomes an audit event.

(Failed sign-ins are recorded by the account adapter, which also enforces lock-out.)
"""

from __future__ import annotations

import time
from typing import Any

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest

from vetline.identity.actions import record_mfa_change, record_sign_in, record_sign_out
from vetline.identity.models import Person


@receiver(user_logged_in)
def _on_login(sender: Any, request: HttpRequest, user: Person, **kwargs: Any) -> None:
    if request is not None:
        request.session["vetline_last_seen"] = time.time()
    record_sign_in(person=user)


@receiver(user_logged_out)
def _on_logout(sender: Any, request: HttpRequest, user: Person | None, **kwargs: Any) -> None:
    record_sign_out(person=user)


@receiver(post_save, sender=Authenticator)
def _on_mfa_saved(sender: Any, instance: Authenticator, created: bool, **kwargs: Any) -> None:
    # Model signals run inside the transaction that adds the authenticator, so the audit
    # event commits (or rolls back) with it. Later saves only touch last_used_at.
    if created:
        record_mfa_change(
            person=instance.user, action="identity.mfa.add", detail={"type": str(instance.type)}
        )


@receiver(post_delete, sender=Authenticator)
def _on_mfa_deleted(sender: Any, instance: Authenticator, **kwargs: Any) -> None:
    record_mfa_change(
        person=instance.user, action="identity.mfa.remove", detail={"type": str(instance.type)}
    )


@receiver(mfa_signals.authenticator_removed)
def _on_mfa_removed(
    sender: Any, request: HttpRequest, user: Person, authenticator: Any, **kwargs: Any
) -> None:
    if request is not None and hasattr(request, "session"):
        request.session.pop("vetline_mfa_ok", None)


@receiver(mfa_signals.authenticator_reset)
def _on_mfa_reset(
    sender: Any, request: HttpRequest, user: Person, authenticator: Any, **kwargs: Any
) -> None:
    record_mfa_change(
        person=user, action="identity.mfa.reset", detail={"type": str(authenticator.type)}
    )


@receiver(account_signals.password_changed)
@receiver(account_signals.password_set)
@receiver(account_signals.password_reset)
def _on_password(sender: Any, request: HttpRequest, user: Person, **kwargs: Any) -> None:
    # The password itself never reaches the audit trail; only that it changed, and how.
    how = "reset" if kwargs.get("signal") is account_signals.password_reset else "change"
    record_mfa_change(person=user, action=f"identity.password.{how}", detail={})
