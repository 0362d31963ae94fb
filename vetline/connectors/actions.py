"""Writes of the connector layer: connecting accounts (OAuth, consent links), tokens into the
vault, the connection state machine, capture into the archive, and alerts.

Network calls never run inside a database transaction; the state they lead to is written
afterwards, under a row lock, in one transaction with its audit event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from vetline.accounts.actions import read_secret, vault
from vetline.accounts.models import AccountKind, Credential, CredentialKind, SocialAccount
from vetline.archive.actions import ingest_batch
from vetline.audit.actions import record
from vetline.connectors.base import (
    CAPABILITY_LABELS,
    MEDIA_KEY,
    AccountRef,
    ActivityPage,
    AuthExpired,
    AuthorizationStart,
    AuthRevoked,
    CapabilityReport,
    Connector,
    ConnectorError,
    Malformed,
    MediaRef,
    MediaTooLarge,
    RateLimited,
    TokenSet,
    Unsupported,
    new_pkce_pair,
)
from vetline.connectors.http import register_secret
from vetline.connectors.media import DEFAULT_MAX_BYTES, media_of
from vetline.connectors.models import (
    Alert,
    AlertRecipient,
    AlertSeverity,
    CaptureState,
    Connection,
    ConsentLink,
)
from vetline.connectors.registry import ConnectorNotInstalled, connector_for
from vetline.connectors.states import (
    TRANSITIONS,
    ConnectionState,
    IllegalStreamTransition,
    IllegalTransition,
    StreamState,
    check_stream_transition,
    check_transition,
)
from vetline.core.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from vetline.identity.models import Person, RoleGrant
from vetline.identity.permissions import require
from vetline.identity.roles import Perm, Role

logger = logging.getLogger(__name__)

CONSENT_SALT: Final = "vetline.connectors.consent-link"
OAUTH_MAX_AGE: Final = dt.timedelta(minutes=30)
ALERT_ACCESS_LOST: Final = "access_lost"
ALERT_CAPTURE_FAILING: Final = "capture_failing"
ALERT_CAPTURE_LAGGING: Final = "capture_lagging"
ALERT_CAPABILITIES_MISSING: Final = "capabilities_missing"
ALERT_MEDIA_MISSING: Final = "media_missing"
MAX_APP_PASSWORD_CHARS: Final = 200
CAPTURABLE: Final = frozenset({ConnectionState.CONNECTED, ConnectionState.ERROR})


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def get_connector(network: str) -> Connector:
    try:
        return connector_for(network, config=settings.VETLINE_CONNECTORS)
    except ConnectorNotInstalled as exc:
        raise ValidationFailed(
            f"No connector is installed for {network}: this account cannot be connected yet.",
            code="connector_not_installed",
        ) from exc


def account_ref(account: SocialAccount, connection: Connection | None = None) -> AccountRef:
    """What a connector is told about the account a call is for (see :class:`AccountRef`)."""
    if connection is None:
        connection = Connection.objects.filter(account=account).first()
    return AccountRef(
        handle=account.handle,
        kind=str(account.kind),
        display_name=account.display_name,
        remote_account_id=connection.remote_account_id if connection else "",
    )


def _snapshot(c: Connection) -> dict[str, Any]:
    return {
        "status": c.status,
        "scopes": list(c.scopes or []),
        "token_expires_at": c.token_expires_at,
        "remote_account_id": c.remote_account_id,
        "reason": c.status_reason,
    }


def _transition(
    connection: Connection,
    target: ConnectionState,
    *,
    actor: Person | None,
    reason: str = "",
    actor_name: str = "",
    **changes: Any,
) -> None:
    """Move a locked connection to ``target`` (checked against the declared machine), apply
    ``changes``, save, and audit. Call inside a transaction with the row locked."""
    try:
        check_transition(connection.status, target)
    except IllegalTransition as exc:
        raise Conflict(
            f"The connection is {connection.state.label.lower()}; it cannot become "
            f"{target.label.lower()} from there."
        ) from exc
    before = _snapshot(connection)
    connection.status = target.value
    connection.status_changed_at = timezone.now()
    connection.status_reason = reason[:500]
    for key, value in changes.items():
        setattr(connection, key, value)
    connection.save()
    record(
        action=f"connectors.connection.{target.value}",
        actor=actor,
        actor_name=actor_name,
        obj=connection.account,
        before=before,
        after=_snapshot(connection),
    )


def _locked_connection(account: SocialAccount) -> Connection:
    connection, _ = Connection.objects.get_or_create(account=account)
    return Connection.objects.select_for_update().select_related("account").get(pk=connection.pk)


# --- Connecting --------------------------------------------------------------------------------


def start_connection(
    *, actor: Person, account: SocialAccount, redirect_uri: str
) -> AuthorizationStart:
    """An administrator starts connecting a corporate account. Employees' personal accounts are
    connected by their owners through a consent link (:func:`redeem_consent_link`)."""
    require(actor, Perm.CREDENTIALS_MANAGE)
    if account.kind == AccountKind.EMPLOYEE:
        raise ValidationFailed(
            "A personal-for-business account is connected by its owner: send them a consent "
            "link instead.",
            code="consent_link_required",
        )
    return _start(actor=actor, account=account, redirect_uri=redirect_uri)


def _start(*, actor: Person, account: SocialAccount, redirect_uri: str) -> AuthorizationStart:
    if not account.is_active:
        raise ValidationFailed("This account is deactivated.")
    connector = get_connector(account.network)
    if not connector.capabilities.oauth2:
        raise ValidationFailed(f"{connector.label} is not connected through OAuth.")
    state = secrets.token_urlsafe(32)
    verifier, challenge = new_pkce_pair()
    # Build the URL first: a network that is not configured (no client id) is a clear error and
    # leaves the connection as it was, rather than stuck in PENDING.
    try:
        url = connector.authorization_url(
            redirect_uri=redirect_uri, state=state, code_challenge=challenge, handle=account.handle
        )
    except ConnectorError as exc:
        raise ValidationFailed(
            f"{connector.label} cannot be connected: {exc}", code="connector_unavailable"
        ) from exc
    with transaction.atomic():
        connection = _locked_connection(account)
        _transition(
            connection,
            ConnectionState.PENDING,
            actor=actor,
            reason=f"connection started by {actor}",
            pending_by=actor,
            oauth_state_sha256=_sha(state),
            oauth_verifier_ciphertext=vault().encrypt(verifier),
            oauth_started_at=timezone.now(),
        )
    return AuthorizationStart(url=url, state=state, code_verifier=verifier)


def complete_connection(*, actor: Person, state: str, code: str, redirect_uri: str) -> Connection:
    """The second leg of OAuth, for the person who started it (anyone else gets NotFound)."""
    if not state or not code:
        raise NotFound("This connection request is unknown or already used.")
    connection = (
        Connection.objects.filter(
            oauth_state_sha256=_sha(state), status=ConnectionState.PENDING.value
        )
        .select_related("account")
        .first()
    )
    if connection is None or connection.pending_by_id != actor.pk:
        raise NotFound("This connection request is unknown or already used.")
    if (
        connection.oauth_started_at is None
        or connection.oauth_started_at + OAUTH_MAX_AGE < timezone.now()
    ):
        raise ValidationFailed("This connection request has expired; start again.")
    assert connection.oauth_verifier_ciphertext is not None
    verifier = vault().decrypt(bytes(connection.oauth_verifier_ciphertext))
    connector = get_connector(connection.account.network)
    try:
        tokens = connector.exchange_code(
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=verifier,
            account=account_ref(connection.account, connection),
        )
    except ConnectorError as exc:
        raise ValidationFailed(f"The network refused the connection: {exc.message}") from exc
    with transaction.atomic():
        locked = _locked_connection(connection.account)
        if locked.oauth_state_sha256 != _sha(state) or locked.status != ConnectionState.PENDING:
            raise NotFound("This connection request is unknown or already used.")
        _mark_connected(locked, tokens=tokens, actor=actor, reason="connected")
    return locked


def _mark_connected(
    connection: Connection, *, tokens: TokenSet, actor: Person, reason: str
) -> None:
    """Store the tokens and move the locked connection to CONNECTED, with its scopes and
    expiry; capture can start and the access alerts are resolved. A capability probe runs
    after the commit. Call inside a transaction with the row locked."""
    _store_tokens(account=connection.account, tokens=tokens, set_by=actor)
    _transition(
        connection,
        ConnectionState.CONNECTED,
        actor=actor,
        reason=reason,
        scopes=list(tokens.scopes),
        token_expires_at=tokens.expires_at,
        remote_account_id=tokens.remote_account_id[:200],
        connected_by=actor,
        connected_at=timezone.now(),
        pending_by=None,
        oauth_state_sha256="",
        oauth_verifier_ciphertext=None,
        oauth_started_at=None,
    )
    CaptureState.objects.get_or_create(account=connection.account)
    resolve_alerts(
        account=connection.account,
        codes=(ALERT_ACCESS_LOST, ALERT_CAPTURE_FAILING),
        reason="reconnected",
    )
    connection_id = connection.pk
    transaction.on_commit(lambda: _queue_probe(connection_id))


def _queue_probe(connection_id: int) -> None:
    from vetline.connectors.tasks import probe_connection_task

    try:
        probe_connection_task(connection_id)
    except Exception:  # the probe is a report: it never undoes or fails the connection
        logger.exception("connectors.probe.not_queued", extra={"connection": connection_id})


def may_connect_with_app_password(*, actor: Person, account: SocialAccount) -> None:
    """Raise unless ``actor`` may connect ``account`` with an app password: an administrator a
    corporate account, the owner their own personal-for-business account (nobody else ever
    sees their password). Someone who may not see the account gets NotFound from the caller's
    access function before this."""
    if account.kind == AccountKind.EMPLOYEE:
        require(actor, Perm.OWN_ACCOUNTS)
        if account.owner_id != actor.pk:
            raise Forbidden(
                "A personal-for-business account is connected by its owner: send them a "
                "consent link."
            )
    else:
        require(actor, Perm.CREDENTIALS_MANAGE)


def connect_with_app_password(
    *,
    actor: Person,
    account: SocialAccount,
    identifier: str,
    app_password: str,
    connector: Connector | None = None,
) -> Connection:
    """Connect ``account`` on a network that signs in with an app password (Bluesky). The
    password is exchanged at once for tokens and never stored or logged; the tokens go into the
    vault and the connection follows the same states, audit events and alerts as OAuth.

    The identity the network reports must be the registered account's: signing in as someone
    else is refused."""
    may_connect_with_app_password(actor=actor, account=account)
    identifier = (identifier or "").strip()
    if not identifier:
        raise ValidationFailed("Enter the account's handle or e-mail.", field="identifier")
    if not app_password or len(app_password) > MAX_APP_PASSWORD_CHARS:
        raise ValidationFailed("Enter the app password.", field="app_password")
    if len(identifier) > MAX_APP_PASSWORD_CHARS:
        raise ValidationFailed("This handle is too long.", field="identifier")
    if not account.is_active:
        raise ValidationFailed("This account is deactivated.")
    register_secret(app_password)
    connector = connector or get_connector(account.network)
    if not connector.capabilities.app_password:
        raise ValidationFailed(
            f"{connector.label} accounts are not connected with an app password.",
            code="app_password_unsupported",
        )
    ref = account_ref(account)
    try:
        tokens = connector.sign_in(identifier=identifier, app_password=app_password, account=ref)
    except ConnectorError as exc:
        raise ValidationFailed(
            f"{connector.label} refused the sign-in: {exc.message}", code="sign_in_refused"
        ) from exc
    reported = tokens.remote_handle.strip().lstrip("@").lower()
    if reported and reported != ref.bare_handle.lower():
        raise ValidationFailed(
            f"You signed in as {tokens.remote_handle}, but this account is {account.handle}.",
            code="wrong_account",
        )
    with transaction.atomic():
        connection = _locked_connection(account)
        if ConnectionState.CONNECTED not in TRANSITIONS[connection.state]:
            _transition(
                connection,
                ConnectionState.PENDING,
                actor=actor,
                reason=f"reconnection started by {actor}",
            )
        _mark_connected(
            connection, tokens=tokens, actor=actor, reason="connected with an app password"
        )
        # The consent links that asked the owner to connect it have served their purpose.
        for link in ConsentLink.objects.select_for_update().filter(
            account=account, person=actor, used_at__isnull=True
        ):
            link.used_at = timezone.now()
            link.save(update_fields=["used_at"])
            record(
                action="connectors.consent_link.use",
                actor=actor,
                obj=account,
                after={"link_id": link.pk, "by": "app_password"},
            )
    return connection


def _store_tokens(*, account: SocialAccount, tokens: TokenSet, set_by: Person | None) -> None:
    """Put tokens into the credentials vault, replacing the active ones. Call inside a
    transaction. ``set_by`` None (a refresh by the system) keeps the person who connected."""
    v = vault()
    now = timezone.now()
    if set_by is None:
        conn = Connection.objects.filter(account=account).select_related("connected_by").first()
        set_by = conn.connected_by if conn else None
    if set_by is None:
        raise ValidationFailed("Nobody is recorded as having connected this account.")
    stored = []
    for kind, secret, expires in (
        (CredentialKind.ACCESS_TOKEN, tokens.access_token, tokens.expires_at),
        (CredentialKind.REFRESH_TOKEN, tokens.refresh_token, None),
    ):
        if not secret:
            continue
        register_secret(secret)
        Credential.objects.filter(account=account, kind=kind, revoked_at__isnull=True).update(
            revoked_at=now, ciphertext=None
        )
        cred = Credential.objects.create(
            account=account,
            kind=kind,
            ciphertext=v.encrypt(secret),
            key_id=v.primary_key_id,
            set_by=set_by,
            expires_at=expires,
        )
        stored.append({"credential_id": cred.pk, "kind": kind.value})
    record(
        action="connectors.tokens.store",
        actor=None,
        actor_name=f"{set_by.full_name} <{set_by.email}> (OAuth)",
        obj=account,
        after={"credentials": stored, "expires_at": tokens.expires_at, "key_id": v.primary_key_id},
    )


def _tokens_for(connection: Connection) -> TokenSet:
    account = connection.account
    access = read_secret(account=account, kind=CredentialKind.ACCESS_TOKEN)
    try:
        refresh = read_secret(account=account, kind=CredentialKind.REFRESH_TOKEN)
    except NotFound:
        refresh = ""
    register_secret(access)
    register_secret(refresh)
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        expires_at=connection.token_expires_at,
        scopes=tuple(connection.scopes or ()),
        remote_account_id=connection.remote_account_id,
        # The handle the account is registered under: connectors told only the tokens (the
        # publishing path) still know which account, server, Page or organization it is.
        remote_handle=account.handle,
    )


def refresh_tokens(*, connection_id: int, connector: Connector | None = None) -> TokenSet:
    """Refresh the access token (system). On refusal the connection becomes expired or revoked
    and an alert is raised; the error is re-raised."""
    connection = Connection.objects.select_related("account").get(pk=connection_id)
    connector = connector or get_connector(connection.account.network)
    tokens = _tokens_for(connection)
    if not tokens.refresh_token or not connector.capabilities.token_refresh:
        record_access_lost(
            connection_id=connection_id,
            state=ConnectionState.EXPIRED,
            reason="the access token expired and the network does not refresh it",
        )
        raise AuthExpired("the access token expired")
    try:
        fresh = connector.refresh(tokens=tokens)
    except (AuthRevoked, AuthExpired, Unsupported) as exc:
        target = (
            ConnectionState.REVOKED if isinstance(exc, AuthRevoked) else ConnectionState.EXPIRED
        )
        record_access_lost(connection_id=connection_id, state=target, reason=exc.message)
        raise
    with transaction.atomic():
        locked = _locked_connection(connection.account)
        _store_tokens(account=locked.account, tokens=fresh, set_by=None)
        locked.token_expires_at = fresh.expires_at
        if fresh.scopes:
            locked.scopes = list(fresh.scopes)
        locked.save(update_fields=["token_expires_at", "scopes"])
        record(
            action="connectors.tokens.refresh",
            actor=None,
            actor_name="capture",
            obj=locked.account,
            after={"token_expires_at": fresh.expires_at},
        )
    return fresh


def account_tokens(account: SocialAccount) -> tuple[Connector, TokenSet]:
    """The connector and current tokens of a *connected* account, refreshed when expired
    (system; for publishing and other callers outside capture). Raises ValidationFailed when the
    account is not connected, and AuthExpired/AuthRevoked (after alerting) when the network
    refuses the refresh."""
    connection = (
        Connection.objects.filter(account=account, status=ConnectionState.CONNECTED.value)
        .select_related("account")
        .first()
    )
    if connection is None:
        raise ValidationFailed(
            f"{account} is not connected: connect it on its account page first.",
            code="not_connected",
        )
    connector = get_connector(account.network)
    tokens = _tokens_for(connection)
    if tokens.expired(timezone.now()) and tokens.refresh_token:
        tokens = refresh_tokens(connection_id=connection.pk, connector=connector)
    return connector, tokens


def record_access_lost(*, connection_id: int, state: ConnectionState, reason: str) -> None:
    """The network refused our access (system). Capture has stopped: alert the owner and
    compliance. Idempotent: a connection already in ``state`` is left as is."""
    with transaction.atomic():
        connection = (
            Connection.objects.select_for_update().select_related("account").get(pk=connection_id)
        )
        if connection.status == state.value:
            return
        _transition(connection, state, actor=None, actor_name="capture", reason=reason)
        account = connection.account
        raise_alert(
            code=ALERT_ACCESS_LOST,
            severity=AlertSeverity.CRITICAL,
            account=account,
            title=f"Capture of {account} has stopped: {state.label.lower()}",
            body=(
                f"Vetline can no longer capture {account} ({reason}). Until the account is "
                "reconnected nothing sent or received on it is archived. "
                + (
                    "The account holder must reconnect it through a new consent link."
                    if account.kind == AccountKind.EMPLOYEE
                    else "An administrator must reconnect it."
                )
            ),
        )


def disconnect_account(*, actor: Person, account: SocialAccount) -> Connection:
    """Withdraw Vetline's access on purpose: the tokens are wiped from the vault at once."""
    require(actor, Perm.CREDENTIALS_MANAGE)
    with transaction.atomic():
        connection = Connection.objects.filter(account=account).first()
        if connection is None or connection.status == ConnectionState.DISCONNECTED:
            raise Conflict("This account is not connected.")
        connection = _locked_connection(account)
        now = timezone.now()
        wiped = list(
            Credential.objects.filter(
                account=account,
                kind__in=[CredentialKind.ACCESS_TOKEN, CredentialKind.REFRESH_TOKEN],
                revoked_at__isnull=True,
            ).values_list("pk", flat=True)
        )
        Credential.objects.filter(pk__in=wiped).update(
            revoked_at=now, revoked_by=actor, ciphertext=None
        )
        _transition(
            connection,
            ConnectionState.DISCONNECTED,
            actor=actor,
            reason=f"disconnected by {actor}; credentials {wiped} wiped",
            pending_by=None,
            oauth_state_sha256="",
            oauth_verifier_ciphertext=None,
        )
    return connection


# --- Consent links -----------------------------------------------------------------------------


def consent_url(token: str) -> str:
    return settings.VETLINE_BASE_URL.rstrip("/") + reverse("connectors:consent", args=[token])


@dataclass(frozen=True)
class IssuedConsentLink:
    link: ConsentLink
    token: str = ""

    @property
    def url(self) -> str:
        return consent_url(self.token)


def create_consent_link(*, actor: Person, account: SocialAccount) -> IssuedConsentLink:
    """Send the owner of a personal-for-business account a signed, expiring, single-use link
    through which they connect the account themselves."""
    require(actor, Perm.ACCOUNTS_MANAGE)
    if account.kind != AccountKind.EMPLOYEE:
        raise ValidationFailed(
            "Consent links are for personal-for-business accounts; connect corporate accounts "
            "directly."
        )
    if not account.is_active or not account.owner.is_active:
        raise ValidationFailed("The account or its owner is no longer active.")
    get_connector(account.network)  # refuse early when the network cannot be connected
    nonce = secrets.token_urlsafe(32)
    hours = settings.VETLINE_CONSENT_LINK_HOURS
    with transaction.atomic():
        link = ConsentLink.objects.create(
            account=account,
            person=account.owner,
            nonce_sha256=_sha(nonce),
            created_by=actor,
            expires_at=timezone.now() + dt.timedelta(hours=hours),
        )
        token = signing.dumps({"l": link.pk, "n": nonce}, salt=CONSENT_SALT, compress=True)
        record(
            action="connectors.consent_link.create",
            actor=actor,
            obj=account,
            after={"link_id": link.pk, "person_id": link.person_id, "expires_at": link.expires_at},
        )
        issued = IssuedConsentLink(link=link, token=token)
        owner = account.owner
        url = issued.url
        transaction.on_commit(
            lambda: send_mail(
                subject=f"Connect your {account.get_network_display()} account to Vetline",
                message=(
                    f"Hello {owner.full_name},\n\n{actor.full_name} asks you to connect your "
                    f"account {account.handle} so that it is captured for compliance. Follow "
                    f"this link and sign in to the network yourself; nobody else sees your "
                    f"password. The link works once, for you only, for {hours} hours.\n\n{url}\n"
                ),
                from_email=None,
                recipient_list=[owner.email],
                fail_silently=True,
            )
        )
    return issued


def read_consent_link(*, actor: Person, token: str) -> ConsentLink:
    """The link behind ``token`` if ``actor`` may use it now. Wrong person or a forged token:
    NotFound (nothing is revealed). Expired or used: a message saying so."""
    try:
        data = signing.loads(token, salt=CONSENT_SALT)
        link_id, nonce = int(data["l"]), str(data["n"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise NotFound("This consent link is not valid.") from exc
    link = ConsentLink.objects.filter(pk=link_id).select_related("account", "person").first()
    if (
        link is None
        or not secrets.compare_digest(link.nonce_sha256, _sha(nonce))
        or link.person_id != actor.pk
    ):
        raise NotFound("This consent link is not valid.")
    if link.used_at is not None:
        raise Conflict("This consent link has already been used; ask for a new one.")
    if link.expires_at <= timezone.now():
        raise ValidationFailed("This consent link has expired; ask for a new one.")
    return link


def redeem_consent_link(*, actor: Person, token: str, redirect_uri: str) -> AuthorizationStart:
    """The employee follows their link: it is used up, and their OAuth flow starts."""
    require(actor, Perm.OWN_ACCOUNTS)
    link = read_consent_link(actor=actor, token=token)
    with transaction.atomic():
        locked = ConsentLink.objects.select_for_update().get(pk=link.pk)
        if locked.used_at is not None:
            raise Conflict("This consent link has already been used; ask for a new one.")
        locked.used_at = timezone.now()
        locked.save(update_fields=["used_at"])
        record(
            action="connectors.consent_link.use",
            actor=actor,
            obj=link.account,
            after={"link_id": link.pk},
        )
        return _start(actor=actor, account=link.account, redirect_uri=redirect_uri)


# --- Alerts ------------------------------------------------------------------------------------


def alert_recipients(account: SocialAccount | None) -> list[Person]:
    officers = Person.objects.filter(
        is_active=True,
        pk__in=RoleGrant.objects.filter(role=Role.COMPLIANCE_OFFICER.value).values("person_id"),
    )
    people = {p.pk: p for p in officers}
    if account is not None and account.owner.is_active:
        people.setdefault(account.owner_id, account.owner)
    return list(people.values())


def raise_alert(
    *,
    code: str,
    severity: AlertSeverity,
    account: SocialAccount | None,
    title: str,
    body: str,
    link: str = "",
) -> Alert | None:
    """Open an alert for the account's owner and the compliance officers, e-mailed after the
    commit. Call inside a transaction. An alert already open for (account, code) is kept and
    None is returned, so a failing job does not flood anyone. ``link``: the path of the page
    where people act on it (shown with the alert, and in the e-mail as a full address)."""
    if Alert.objects.filter(account=account, code=code, resolved_at__isnull=True).exists():
        return None
    if not link and account is not None:
        from django.urls import reverse

        link = reverse("accounts:detail", args=[account.pk])
    alert = Alert.objects.create(
        code=code, severity=severity, account=account, title=title[:300], body=body, link=link
    )
    recipients = alert_recipients(account)
    AlertRecipient.objects.bulk_create([AlertRecipient(alert=alert, person=p) for p in recipients])
    record(
        action="connectors.alert.raise",
        actor=None,
        actor_name="capture",
        obj=alert,
        after={
            "code": code,
            "severity": str(severity),
            "account_id": account.pk if account else None,
            "recipients": [p.pk for p in recipients],
        },
    )
    alert_id = alert.pk
    transaction.on_commit(lambda: _email_alert(alert_id))
    return alert


def _email_alert(alert_id: int) -> None:
    alert = Alert.objects.get(pk=alert_id)
    deliveries = list(alert.deliveries.select_related("person").filter(emailed_at__isnull=True))
    emails = [d.person.email for d in deliveries if d.person.email]
    if not emails:
        return
    try:
        send_mail(
            subject=f"[Vetline {alert.get_severity_display()}] {alert.title}",
            message=alert.body
            + (f"\n\n{settings.VETLINE_BASE_URL.rstrip('/')}{alert.link}" if alert.link else ""),
            from_email=None,
            recipient_list=emails,
        )
    except Exception:  # the alert stays visible in the app even when mail is down
        logger.exception("connectors.alert.email_failed", extra={"alert": alert_id})
        return
    AlertRecipient.objects.filter(pk__in=[d.pk for d in deliveries]).update(
        emailed_at=timezone.now()
    )


def resolve_alerts(*, account: SocialAccount, codes: tuple[str, ...], reason: str) -> int:
    """Close open alerts of these codes (call inside a transaction)."""
    open_alerts = list(
        Alert.objects.filter(account=account, code__in=codes, resolved_at__isnull=True)
    )
    if not open_alerts:
        return 0
    Alert.objects.filter(pk__in=[a.pk for a in open_alerts]).update(resolved_at=timezone.now())
    record(
        action="connectors.alert.resolve",
        actor=None,
        actor_name="capture",
        obj=account,
        after={"alert_ids": [a.pk for a in open_alerts], "reason": reason},
    )
    return len(open_alerts)


def mark_alert_read(*, actor: Person, alert_id: int) -> AlertRecipient:
    with transaction.atomic():
        delivery = (
            AlertRecipient.objects.select_for_update()
            .filter(alert_id=alert_id, person=actor)
            .select_related("alert")
            .first()
        )
        if delivery is None:
            raise NotFound("No such alert.")
        if delivery.read_at is None:
            delivery.read_at = timezone.now()
            delivery.save(update_fields=["read_at"])
            record(action="connectors.alert.read", actor=actor, obj=delivery.alert)
    return delivery


# --- Capability probe --------------------------------------------------------------------------


def request_probe(*, actor: Person, account: SocialAccount) -> None:
    """Someone who manages accounts asks to check again what the connection allows; the probe
    runs in the worker after the commit."""
    connection = _connection_to_work_on(actor, account, "its access cannot be checked")
    with transaction.atomic():
        record(action="connectors.probe.request", actor=actor, obj=account)
        connection_id = connection.pk
        transaction.on_commit(lambda: _queue_probe(connection_id))


def _connection_to_work_on(actor: Person, account: SocialAccount, what: str) -> Connection:
    """The account's connection, for someone who manages accounts, when it is connected."""
    require(actor, Perm.ACCOUNTS_MANAGE)
    connection = Connection.objects.filter(account=account).first()
    if connection is None or connection.state not in CAPTURABLE:
        raise ValidationFailed(f"This account is not connected, so {what}.")
    return connection


def probe_connection(
    *, connection_id: int, connector: Connector | None = None
) -> CapabilityReport | None:
    """Ask the connector what the granted access allows for the account (system), store the
    report on the connection and audit it. Capabilities the network offers but this access does
    not allow (a scope not granted, an endpoint the server lacks) raise an alert to the owner
    and compliance; a later report without them resolves it. Returns None when the account is
    not connected (nothing to probe) or the network could not be asked."""
    connection = Connection.objects.select_related("account").get(pk=connection_id)
    if connection.state not in CAPTURABLE:
        return None
    try:
        connector = connector or get_connector(connection.account.network)
        tokens = _tokens_for(connection)
        report = connector.probe(tokens=tokens, account=account_ref(connection.account, connection))
    except (ConnectorError, DomainError) as exc:
        message = exc.message
        logger.warning(
            "connectors.probe.failed", extra={"connection": connection_id, "error": message}
        )
        return None
    with transaction.atomic():
        locked = _locked_connection(connection.account)
        before = dict(locked.capability_report or {})
        locked.capability_report = report.as_dict()
        locked.capability_checked_at = timezone.now()
        locked.save(update_fields=["capability_report", "capability_checked_at"])
        record(
            action="connectors.connection.probe",
            actor=None,
            actor_name="capture",
            obj=locked.account,
            before=before or None,
            after=locked.capability_report,
        )
        account = locked.account
        if report.missing:
            lines = "\n".join(
                f"- {CAPABILITY_LABELS.get(name, name)}: {why}"
                for name, why in sorted(report.missing.items())
            )
            raise_alert(
                code=ALERT_CAPABILITIES_MISSING,
                severity=AlertSeverity.WARNING,
                account=account,
                title=f"{account} is connected without everything Vetline needs",
                body=(
                    f"The access granted for {account} does not allow:\n{lines}\n"
                    "What is missing is not captured or cannot be published. Reconnect the "
                    "account and grant every permission asked for."
                ),
            )
        else:
            resolve_alerts(
                account=account, codes=(ALERT_CAPABILITIES_MISSING,), reason="all granted"
            )
    return report


# --- Capture -----------------------------------------------------------------------------------


@dataclass
class CaptureOutcome:
    account_id: int
    status: str  # captured, not_connected, deferred, failed, access_lost, superseded
    pages: int = 0
    ingested: int = 0
    duplicates: int = 0
    quarantined: int = 0
    media_missing: int = 0
    error: str = ""


def request_capture(*, actor: Person, account: SocialAccount) -> None:
    """An administrator asks for a capture now; it runs in the worker after the commit."""
    _connection_to_work_on(actor, account, "it cannot be captured")
    from vetline.connectors.tasks import capture_account_task

    with transaction.atomic():
        record(action="connectors.capture.request", actor=actor, obj=account)
        account_id = account.pk
        transaction.on_commit(lambda: capture_account_task(account_id))


def capture_account(
    *,
    account_id: int,
    max_pages: int = 50,
    page_size: int = 200,
    connector: Connector | None = None,
) -> CaptureOutcome:
    """Capture one account from its stored cursor (system; safe to re-run after a crash).

    Each page's items are archived through :func:`ingest_batch` and the cursor advances in the
    *same* transaction, so a crash loses nothing and re-fetching after one duplicates nothing
    (the archive recognises items already archived). If another worker advanced the cursor in
    the meantime, this run stops (compare-and-set on the cursor)."""
    account = SocialAccount.objects.select_related("owner").get(pk=account_id)
    outcome = CaptureOutcome(account_id=account_id, status="captured")
    connection = Connection.objects.filter(account=account).first()
    if connection is None or connection.state not in CAPTURABLE or not account.is_active:
        outcome.status = "not_connected"
        return outcome
    state, _ = CaptureState.objects.get_or_create(account=account)
    now = timezone.now()
    if state.retry_not_before is not None and state.retry_not_before > now:
        outcome.status = "deferred"
        return outcome
    CaptureState.objects.filter(pk=state.pk).update(last_attempt_at=now)
    connector = connector or get_connector(account.network)
    try:
        try:
            tokens = _tokens_for(connection)
        except NotFound as exc:
            raise AuthRevoked("the credentials were revoked in the vault") from exc
        if tokens.expired(now) and tokens.refresh_token:
            tokens = refresh_tokens(connection_id=connection.pk, connector=connector)
        refreshed = False
        for _ in range(max_pages):
            cursor = state.cursor if state.has_cursor else None
            try:
                page = connector.fetch_activity(
                    tokens=tokens, handle=account.handle, cursor=cursor, limit=page_size
                )
                archived = archive_page(
                    account=account,
                    state_id=state.pk,
                    expected=state,
                    page=page,
                    outcome=outcome,
                    connector=connector,
                    tokens=tokens,
                )
            except AuthExpired:
                if refreshed or not tokens.refresh_token:
                    raise
                tokens = refresh_tokens(connection_id=connection.pk, connector=connector)
                refreshed = True
                continue
            if archived is None:
                outcome.status = "superseded"
                break
            state = archived
            if not page.more:
                break
    except AuthRevoked as exc:
        record_access_lost(
            connection_id=connection.pk, state=ConnectionState.REVOKED, reason=exc.message
        )
        return _failed(outcome, "access_lost", exc.message)
    except AuthExpired as exc:
        record_access_lost(
            connection_id=connection.pk, state=ConnectionState.EXPIRED, reason=exc.message
        )
        return _failed(outcome, "access_lost", exc.message)
    except RateLimited as exc:
        CaptureState.objects.filter(pk=state.pk).update(
            retry_not_before=timezone.now() + dt.timedelta(seconds=exc.retry_after),
            last_error=f"rate limited; retrying in {int(exc.retry_after)} s",
            last_error_at=timezone.now(),
        )
        return _failed(outcome, "deferred", exc.message)
    except ConnectorError as exc:
        _record_failure(connection=connection, state_id=state.pk, message=exc.message)
        return _failed(outcome, "failed", exc.message)
    except Exception as exc:
        _record_failure(
            connection=connection,
            state_id=state.pk,
            message=f"internal error: {type(exc).__name__}",
        )
        raise
    if outcome.status == "captured":
        _record_success(connection=connection, state_id=state.pk)
    logger.info("connectors.capture.done", extra=outcome.__dict__)
    return outcome


def archive_page(
    *,
    account: SocialAccount,
    state_id: int,
    expected: CaptureState,
    page: ActivityPage,
    outcome: CaptureOutcome,
    connector: Connector | None = None,
    tokens: TokenSet | None = None,
) -> CaptureState | None:
    """Archive one page of captured items through :func:`ingest_batch` and advance the stored
    cursor to the page's, in one transaction (system; scheduled capture and the stream
    supervisor both go through here).

    The items' media are fetched first, outside the transaction, with ``connector`` and
    ``tokens`` (:func:`fetch_page_media`); a medium that cannot be had is reported in the
    page's transaction (:func:`_record_missing_media`). Without a connector, announced media
    are reported missing.

    Compare-and-set: when the stored cursor is no longer ``expected``'s (another capture
    advanced it meanwhile) nothing is written and None is returned; the caller starts again
    from the stored cursor, so two captures of one account never duplicate or go backwards."""
    source = f"api:{account.network}"[:100]
    if connector is not None and tokens is not None:
        page, missing = fetch_page_media(
            connector=connector, tokens=tokens, account=account, page=page
        )
    else:
        page, missing = _without_media(page, reason="no connector session to fetch it with")
    with transaction.atomic():
        locked = CaptureState.objects.select_for_update().get(pk=state_id)
        if (locked.cursor, locked.has_cursor) != (expected.cursor, expected.has_cursor):
            return None
        if page.items:
            items, malformed = _split_malformed(page.items)
            report = ingest_batch(items=items, account=account, source=source, actor=None)
            outcome.ingested += report.ingested
            outcome.duplicates += report.duplicates
            outcome.quarantined += report.quarantined
            locked.items_captured += report.ingested
            locked.items_quarantined += report.quarantined
            if malformed:
                _record_malformed(account=account, report=report, malformed=malformed)
        if missing:
            _record_missing_media(account=account, missing=missing)
        if page.cursor is not None:
            locked.cursor = page.cursor
            locked.has_cursor = True
        locked.save(update_fields=["cursor", "has_cursor", "items_captured", "items_quarantined"])
    outcome.pages += 1
    outcome.media_missing += len(missing)
    return locked


# --- Captured media ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MissingMedium:
    """A medium of a captured item that could not be archived, and why."""

    remote_id: str
    media: MediaRef
    reason: str


def media_max_bytes() -> int:
    """``VETLINE_CAPTURE_MEDIA_MAX_BYTES``: larger media are not fetched."""
    return int(getattr(settings, "VETLINE_CAPTURE_MEDIA_MAX_BYTES", DEFAULT_MAX_BYTES))


def _archived_attachments(
    account: SocialAccount, candidates: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str], list[str]]:
    """(remote id, raw payload SHA-256) -> attachments, for the candidates already archived:
    their media are not fetched again (and the re-captured item stays a duplicate)."""
    from vetline.archive.models import ArchivedRecord

    wanted = {key for key in map(_item_key, candidates) if key is not None}
    if not wanted:
        return {}
    found: dict[tuple[str, str], list[str]] = {}
    rows = ArchivedRecord.objects.filter(
        account=account, network=account.network, remote_id__in={r for r, _ in wanted}
    ).values_list("remote_id", "raw_payload_sha256", "attachments")
    for remote_id, raw_sha, attachments in rows:
        if (remote_id, raw_sha) in wanted:
            found[(remote_id, raw_sha)] = list(attachments or [])
    return found


def _item_key(item: Mapping[str, Any]) -> tuple[str, str] | None:
    from vetline.archive.items import ItemError, clean_item

    try:
        clean = clean_item({k: v for k, v in item.items() if k != MEDIA_KEY})
    except ItemError:
        return None
    return clean.remote_id, clean.raw_payload_sha256


def fetch_page_media(
    *, connector: Connector, tokens: TokenSet, account: SocialAccount, page: ActivityPage
) -> tuple[ActivityPage, list[MissingMedium]]:
    """The page with each item's media (:data:`~vetline.connectors.base.MEDIA_KEY`) fetched by
    the connector, stored as content-addressed blobs retained as long as the item's record
    class, and named in the item's ``attachments``; and the media that could not be had.

    Network calls: never call inside a transaction. An item already archived with the same
    raw payload gets its archived attachments, without fetching anything. A medium over the
    size limit, gone (404) or still failing after the retry helper's attempts is left out and
    returned as missing; the item is archived without it. An expired or revoked access and a
    rate limit longer than the helper may wait raise, so the page is captured again later."""
    from vetline.archive.blobs import default_store, retain_until_for

    with_refs = [e for e in page.items if isinstance(e, Mapping) and MEDIA_KEY in e]
    if not with_refs:
        return page, []
    limit = media_max_bytes()
    known = _archived_attachments(account, with_refs)
    store = default_store()
    captured_at = timezone.now()
    retention: dict[str | None, dt.datetime] = {}
    items: list[Mapping[str, Any] | bytes | Malformed] = []
    missing: list[MissingMedium] = []
    for entry in page.items:
        if not isinstance(entry, Mapping) or MEDIA_KEY not in entry:
            items.append(entry)
            continue
        refs = media_of(entry)
        item = {k: v for k, v in entry.items() if k != MEDIA_KEY}
        key = _item_key(item)
        if key is not None and key in known:
            item["attachments"] = known[key]
            items.append(item)
            continue
        names = [n for n in item.get("attachments") or [] if isinstance(n, str)]
        record_class = item.get("record_class")
        record_class = record_class if isinstance(record_class, str) else None
        if record_class not in retention:
            retention[record_class] = retain_until_for(
                captured_at=captured_at, record_class=record_class
            )
        retain_until = retention[record_class]
        remote_id = str(item.get("remote_id") or "")[:300]
        for ref in _resolved(connector, tokens, refs, remote_id, missing, account.network):
            try:
                data = connector.fetch_media(tokens=tokens, media=ref, max_bytes=limit)
                if len(data) > limit:
                    raise MediaTooLarge(
                        f"the medium is {len(data):,} bytes, over the {limit:,}-byte limit",
                        size_bytes=len(data),
                    )
            except (AuthExpired, AuthRevoked, RateLimited):
                raise
            except ConnectorError as exc:
                missing.append(MissingMedium(remote_id, ref, exc.message))
                continue
            except Exception as exc:  # a library's surprise must not stop the account's capture
                logger.exception(
                    "connectors.media.fetch_failed",
                    extra={"network": account.network, "remote_id": remote_id},
                )
                missing.append(
                    MissingMedium(remote_id, ref, f"internal error: {type(exc).__name__}")
                )
                continue
            name = store.put(data, retain_until=retain_until)
            if name not in names:
                names.append(name)
        if names:
            item["attachments"] = names
        items.append(item)
    if missing:
        logger.warning(
            "connectors.media.missing",
            extra={"network": account.network, "account_id": account.pk, "count": len(missing)},
        )
    return dataclasses.replace(page, items=items), missing


def _resolved(
    connector: Connector,
    tokens: TokenSet,
    refs: Sequence[MediaRef],
    remote_id: str,
    missing: list[MissingMedium],
    network: str,
) -> list[MediaRef]:
    """The media to fetch for an item's announced ones (:meth:`Connector.resolve_media`); one
    that cannot be resolved is missing, as a medium that cannot be fetched."""
    found: list[MediaRef] = []
    for ref in refs:
        try:
            found.extend(connector.resolve_media(tokens=tokens, media=ref))
        except (AuthExpired, AuthRevoked, RateLimited):
            raise
        except ConnectorError as exc:
            missing.append(MissingMedium(remote_id, ref, exc.message))
        except Exception as exc:  # as in fetch_page_media: report, do not stop the capture
            logger.exception(
                "connectors.media.resolve_failed",
                extra={"network": network, "remote_id": remote_id},
            )
            missing.append(MissingMedium(remote_id, ref, f"internal error: {type(exc).__name__}"))
    return found


def _without_media(page: ActivityPage, *, reason: str) -> tuple[ActivityPage, list[MissingMedium]]:
    """The page with announced media removed (reported missing with ``reason``)."""
    if not any(isinstance(e, Mapping) and MEDIA_KEY in e for e in page.items):
        return page, []
    items: list[Mapping[str, Any] | bytes | Malformed] = []
    missing: list[MissingMedium] = []
    for entry in page.items:
        if isinstance(entry, Mapping) and MEDIA_KEY in entry:
            remote_id = str(entry.get("remote_id") or "")[:300]
            missing.extend(MissingMedium(remote_id, ref, reason) for ref in media_of(entry))
            entry = {k: v for k, v in entry.items() if k != MEDIA_KEY}
        items.append(entry)
    return dataclasses.replace(page, items=items), missing


#: at most this many missing media are listed in one alert's text (all are audited)
_ALERT_LISTED: Final = 20


def _record_missing_media(*, account: SocialAccount, missing: Sequence[MissingMedium]) -> None:
    """One ``capture.media.missing`` audit event per medium left out (network, account, remote
    id, URL, reason), and a warning alert to the account's owner and the compliance officers
    (one per page: its code names the page's missing media, so a later page's are alerted
    too). Call inside the page's transaction."""
    for entry in missing:
        record(
            action="capture.media.missing",
            actor=None,
            actor_name="capture",
            obj=account,
            after={
                "network": account.network,
                "account_id": account.pk,
                "account": account.handle,
                "remote_id": entry.remote_id,
                "url": entry.media.ref[:2000],
                "mime_type": entry.media.mime_type[:100],
                "size_bytes": entry.media.size_bytes,
                "reason": entry.reason[:1000],
            },
        )
    digest = hashlib.sha256(
        "\n".join(sorted(f"{m.remote_id} {m.media.ref}" for m in missing)).encode()
    ).hexdigest()[:16]
    lines = [f"- {m.remote_id}: {m.media.ref} ({m.reason})" for m in missing[:_ALERT_LISTED]]
    if len(missing) > _ALERT_LISTED:
        lines.append(f"- and {len(missing) - _ALERT_LISTED} more (see the audit log)")
    raise_alert(
        code=f"{ALERT_MEDIA_MISSING}:{digest}",
        severity=AlertSeverity.WARNING,
        account=account,
        title=f"Media of {account} could not be archived ({len(missing)})",
        body=(
            f"Capture of {account} archived {len({m.remote_id for m in missing})} item(s) "
            "without some of their media, which could not be fetched from the network "
            "(audit events capture.media.missing):\n" + "\n".join(lines)
        ),
    )


def _split_malformed(
    page_items: Sequence[Mapping[str, Any] | bytes | Malformed],
) -> tuple[list[Mapping[str, Any] | bytes], dict[int, Malformed]]:
    """The items for the archive (a :class:`Malformed` one as the bytes the network sent, which
    the archive quarantines) and, by position, the connectors' reasons."""
    items: list[Mapping[str, Any] | bytes] = []
    malformed: dict[int, Malformed] = {}
    for position, entry in enumerate(page_items):
        if isinstance(entry, Malformed):
            malformed[position] = entry
            items.append(entry.payload)
        else:
            items.append(entry)
    return items, malformed


def _record_malformed(
    *, account: SocialAccount, report: Any, malformed: dict[int, Malformed]
) -> None:
    """Keep the connector's reason for each malformed item with its quarantine entry, in an
    audit event of the capture's transaction (the archive states its own reason)."""
    entries = []
    for result in report.items:
        found = malformed.get(result.position)
        if found is None:
            continue
        entries.append(
            {
                "position": result.position,
                "status": result.status,
                "quarantine_id": result.quarantine_id,
                "remote_id": found.remote_id[:300],
                "connector_reason": found.reason[:1000],
                "archive_reason": result.reason[:1000],
            }
        )
    record(
        action="connectors.capture.malformed",
        actor=None,
        actor_name="capture",
        obj=account,
        after={"items": entries},
    )


def _failed(outcome: CaptureOutcome, status: str, message: str) -> CaptureOutcome:
    outcome.status = status
    outcome.error = message
    logger.warning("connectors.capture.failed", extra=outcome.__dict__)
    return outcome


def _record_success(*, connection: Connection, state_id: int) -> None:
    with transaction.atomic():
        state = CaptureState.objects.select_for_update().get(pk=state_id)
        state.last_success_at = timezone.now()
        state.consecutive_failures = 0
        state.retry_not_before = None
        state.save(update_fields=["last_success_at", "consecutive_failures", "retry_not_before"])
        locked = (
            Connection.objects.select_for_update().select_related("account").get(pk=connection.pk)
        )
        if locked.status == ConnectionState.ERROR:
            _transition(
                locked, ConnectionState.CONNECTED, actor=None, actor_name="capture", reason="ok"
            )
        resolve_alerts(
            account=locked.account,
            codes=(ALERT_CAPTURE_FAILING, ALERT_CAPTURE_LAGGING),
            reason="capture succeeded",
        )


def _record_failure(*, connection: Connection, state_id: int, message: str) -> None:
    threshold = settings.VETLINE_CAPTURE_FAILURES_BEFORE_ALERT
    with transaction.atomic():
        state = CaptureState.objects.select_for_update().get(pk=state_id)
        state.consecutive_failures += 1
        state.last_error = message[:1000]
        state.last_error_at = timezone.now()
        state.save(update_fields=["consecutive_failures", "last_error", "last_error_at"])
        if state.consecutive_failures < threshold:
            return
        locked = (
            Connection.objects.select_for_update().select_related("account").get(pk=connection.pk)
        )
        if locked.status == ConnectionState.CONNECTED:
            _transition(
                locked, ConnectionState.ERROR, actor=None, actor_name="capture", reason=message
            )
        raise_alert(
            code=ALERT_CAPTURE_FAILING,
            severity=AlertSeverity.CRITICAL,
            account=locked.account,
            title=f"Capture of {locked.account} is failing",
            body=(
                f"The last {state.consecutive_failures} captures of {locked.account} failed "
                f"({message}). Items sent or received meanwhile are not archived yet; they "
                "will be captured from the stored cursor once capture works again."
            ),
        )


def capture_due_account_ids(*, now: dt.datetime | None = None) -> list[int]:
    """Connected accounts for the scheduled capture: all but those a stream supervisor is
    streaming right now (fresh heartbeat), which are captured as events arrive."""
    now = now or timezone.now()
    streamed = set(
        CaptureState.objects.filter(
            stream_status=StreamState.STREAMING.value,
            stream_heartbeat_at__gte=now - dt.timedelta(seconds=STREAM_STALE_SECONDS),
        ).values_list("account_id", flat=True)
    )
    return [
        account_id
        for account_id in Connection.objects.filter(
            status__in=[s.value for s in CAPTURABLE], account__is_active=True
        ).values_list("account_id", flat=True)
        if account_id not in streamed
    ]


# --- Streaming capture (the stream supervisor, vetline.connectors.stream) -----------------------

#: a streaming account whose supervisor has not been heard of for this long is captured by the
#: schedule again
STREAM_STALE_SECONDS: Final = 120


def streamable_account_ids() -> list[int]:
    """Connected, active accounts whose network's connector declares streaming."""
    from vetline.connectors.registry import installed

    networks = [
        network for network, plugin in installed().items() if plugin.cls.capabilities.streaming
    ]
    return list(
        Connection.objects.filter(
            status__in=[s.value for s in CAPTURABLE],
            account__is_active=True,
            account__network__in=networks,
        )
        .order_by("account_id")
        .values_list("account_id", flat=True)
    )


def _stream_snapshot(state: CaptureState) -> dict[str, Any]:
    return {"stream_status": state.stream_status, "stream_error": state.stream_error}


def record_stream_status(
    *, account_id: int, status: StreamState, error: str = "", now: dt.datetime | None = None
) -> CaptureState:
    """The stream supervisor's state for one account (system). A change of state is checked
    against the declared machine and audited; the same state again only refreshes the
    heartbeat (and the error, which never contains a token: connector messages do not)."""
    now = now or timezone.now()
    with transaction.atomic():
        account = SocialAccount.objects.get(pk=account_id)
        CaptureState.objects.get_or_create(account=account)
        state = CaptureState.objects.select_for_update().get(account=account)
        changes: dict[str, Any] = {"stream_heartbeat_at": now, "stream_error": error[:1000]}
        changed = state.stream_status != status.value
        if changed:
            try:
                check_stream_transition(state.stream_status, status)
            except IllegalStreamTransition as exc:
                raise Conflict(str(exc)) from exc
            changes.update(stream_status=status.value, stream_status_changed_at=now)
        before = _stream_snapshot(state)
        for key, value in changes.items():
            setattr(state, key, value)
        state.save(update_fields=list(changes))
        if changed:
            record(
                action="connectors.stream." + (status.value or "none"),
                actor=None,
                actor_name="stream",
                obj=account,
                before=before,
                after=_stream_snapshot(state),
            )
    return state


def record_stream_alive(
    *, account_id: int, delivered: bool, now: dt.datetime | None = None
) -> None:
    """The stream of one account is connected and current (system): heartbeat, and a
    successful capture as of now (the stream is caught up), clearing failure and lag alerts;
    ``delivered``: it just handed over events."""
    now = now or timezone.now()
    changes: dict[str, Any] = {"stream_heartbeat_at": now, "stream_error": ""}
    if delivered:
        changes["stream_last_event_at"] = now
    CaptureState.objects.filter(account_id=account_id).update(**changes)
    connection = Connection.objects.filter(account_id=account_id).first()
    state = CaptureState.objects.filter(account_id=account_id).first()
    if connection is not None and state is not None:
        _record_success(connection=connection, state_id=state.pk)


def check_capture_lag(*, now: dt.datetime | None = None) -> int:
    """Alert on every connected account whose last successful capture is older than
    ``VETLINE_CAPTURE_LAG_ALERT_MINUTES``. Returns the number of alerts opened."""
    now = now or timezone.now()
    limit = dt.timedelta(minutes=settings.VETLINE_CAPTURE_LAG_ALERT_MINUTES)
    opened = 0
    for connection in Connection.objects.filter(
        status__in=[s.value for s in CAPTURABLE], account__is_active=True
    ).select_related("account", "account__owner"):
        state = CaptureState.objects.filter(account=connection.account).first()
        since = (state.last_success_at if state else None) or connection.connected_at
        if since is None or now - since <= limit:
            continue
        minutes = int((now - since).total_seconds() // 60)
        with transaction.atomic():
            if raise_alert(
                code=ALERT_CAPTURE_LAGGING,
                severity=AlertSeverity.WARNING,
                account=connection.account,
                title=f"Capture of {connection.account} is {minutes} minutes behind",
                body=(
                    f"The last successful capture of {connection.account} was {minutes} minutes "
                    f"ago (threshold {settings.VETLINE_CAPTURE_LAG_ALERT_MINUTES})."
                ),
            ):
                opened += 1
    return opened
