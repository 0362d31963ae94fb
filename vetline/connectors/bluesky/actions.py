"""Connecting a Bluesky account with an app password.

The framework's connection flow is OAuth 2 (authorization URL, code exchange). Bluesky accounts
are connected with an app password instead (see docs/connectors.md): the account holder types
it, it is exchanged at once for a session and never stored; only the session's tokens go into
the credentials vault, and the connection follows the same state machine, audit events and
alerts as every other network.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from vetline.accounts.models import AccountKind, Network, SocialAccount
from vetline.connectors.actions import (
    ALERT_ACCESS_LOST,
    ALERT_CAPTURE_FAILING,
    _locked_connection,
    _store_tokens,
    _transition,
    get_connector,
    resolve_alerts,
)
from vetline.connectors.base import ConnectorError
from vetline.connectors.bluesky.connector import BlueskyConnector
from vetline.connectors.models import CaptureState, Connection
from vetline.connectors.states import TRANSITIONS, ConnectionState
from vetline.core.errors import ValidationFailed
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm


def connect_with_app_password(
    *,
    actor: Person,
    account: SocialAccount,
    identifier: str,
    app_password: str,
    connector: BlueskyConnector | None = None,
) -> Connection:
    """Connect ``account`` with an app password. A corporate account is connected by an
    administrator; a personal-for-business account only by its owner (nobody else ever sees
    their password)."""
    if account.network != Network.BLUESKY:
        raise ValidationFailed("This is not a Bluesky account.")
    if account.kind == AccountKind.EMPLOYEE:
        require(actor, Perm.OWN_ACCOUNTS)
        if account.owner_id != actor.pk:
            raise ValidationFailed(
                "A personal-for-business account is connected by its owner.",
                code="consent_link_required",
            )
    else:
        require(actor, Perm.CREDENTIALS_MANAGE)
    if not account.is_active:
        raise ValidationFailed("This account is deactivated.")
    bluesky = connector or get_connector(account.network)
    if not isinstance(bluesky, BlueskyConnector):
        raise ValidationFailed("The installed Bluesky connector does not take app passwords.")
    try:
        tokens = bluesky.create_session(identifier=identifier, app_password=app_password)
    except ConnectorError as exc:
        raise ValidationFailed(f"Bluesky refused the sign-in: {exc.message}") from exc
    with transaction.atomic():
        connection = _locked_connection(account)
        if ConnectionState.CONNECTED not in TRANSITIONS[connection.state]:
            _transition(
                connection,
                ConnectionState.PENDING,
                actor=actor,
                reason=f"reconnection started by {actor}",
            )
        _store_tokens(account=account, tokens=tokens, set_by=actor)
        _transition(
            connection,
            ConnectionState.CONNECTED,
            actor=actor,
            reason="connected with an app password",
            scopes=list(tokens.scopes),
            token_expires_at=tokens.expires_at,
            remote_account_id=tokens.remote_account_id[:200],
            connected_by=actor,
            connected_at=timezone.now(),
            pending_by=None,
        )
        CaptureState.objects.get_or_create(account=account)
        resolve_alerts(
            account=account,
            codes=(ALERT_ACCESS_LOST, ALERT_CAPTURE_FAILING),
            reason="reconnected",
        )
    return connection
