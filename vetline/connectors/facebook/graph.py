"""Meta's Graph API through the official Business SDK (``facebook_business``), shared by the
Facebook Pages and Instagram connectors.

Requests are built and sent by ``FacebookAdsApi.call``; the framework's retry helper
(:class:`vetline.connectors.http.HttpClient`) drives them, so rate limits and transient errors
are handled like everywhere else. The raw HTTP answer (status, headers, *bytes*) is taken from
the SDK's ``requests`` session with a response hook, because the SDK itself only keeps the body
decoded as text.

Graph API errors are classified from the error object (``error.code``, ``error_subcode``,
``is_transient``), following the Graph API "Handling Errors" reference:

* codes 4, 17, 32, 613 and 80001-80014 (business use case limits): rate limited. The wait is
  ``Retry-After`` when sent, else ``estimated_time_to_regain_access`` (minutes) of
  ``X-Business-Use-Case-Usage``, else a minute;
* ``is_transient: true``, codes 1 and 2, HTTP 5xx: transient, retried with backoff;
* code 190 (and 102): subcodes 458 (app removed), 460 (password changed), 467 (token
  invalidated) and 492 (page role lost) are a revoked grant; 463 and the rest an expired token;
* code 100 subcode 33, or HTTP 404: the object does not exist (deleted).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from facebook_business.api import FacebookAdsApi
from facebook_business.session import FacebookSession

from vetline.connectors.base import (
    AccountRef,
    AuthExpired,
    AuthRevoked,
    ConnectorError,
    MediaRef,
    PermanentError,
    RateLimited,
    TokenSet,
    TransientError,
)
from vetline.connectors.http import (
    Clock,
    HttpClient,
    LibraryCall,
    PublishUncertain,
    Request,
    Response,
    RetryingConnector,
    RetryPolicy,
    error_for,
    not_repeated,
    redact,
    register_secret,
    retry_after_seconds,
)
from vetline.connectors.media import check_declared_size, download
from vetline.connectors.polling import ObjectGone, rescan_window_seconds

#: The Graph API version every request is pinned to (configurable: ``graph_api_version``).
GRAPH_API_VERSION: Final = "v23.0"
GRAPH_URL: Final = "https://graph.facebook.com"
DIALOG_URL: Final = "https://www.facebook.com"
RATE_LIMIT_CODES: Final = frozenset({4, 17, 32, 613})
REVOKED_SUBCODES: Final = frozenset({458, 460, 467, 492})
DEFAULT_RATE_LIMIT_WAIT: Final = 60.0
__all__ = ["GraphClient", "ObjectGone", "PublishUncertain", "classify"]
_STRIPPED_PARAMS: Final = frozenset({"access_token", "appsecret_proof"})


def error_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def meta_wait_seconds(response: Response, now: float) -> float:
    """How long Meta asks us to wait: ``Retry-After``, else the business use case header."""
    wait = retry_after_seconds(response, now)
    if wait is not None:
        return wait
    header = response.header("X-Business-Use-Case-Usage")
    minutes: list[float] = []
    if header:
        try:
            usage = json.loads(header)
        except ValueError:
            usage = None
        if isinstance(usage, dict):
            for entries in usage.values():
                for entry in entries if isinstance(entries, list) else []:
                    value = (
                        entry.get("estimated_time_to_regain_access")
                        if isinstance(entry, dict)
                        else None
                    )
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        minutes.append(float(value))
    if minutes and max(minutes) > 0:
        return max(minutes) * 60.0
    return DEFAULT_RATE_LIMIT_WAIT


def classify(response: Response, now: float) -> ConnectorError | None:
    """The typed error of a Graph API answer (None for a success)."""
    err = error_object(response.body)
    if err is None:
        if response.status == 404:
            return ObjectGone("the object does not exist (HTTP 404)", answer=response.body)
        return error_for(response, now)
    code = _int(err.get("code"))
    subcode = _int(err.get("error_subcode"))
    label = f"Graph API error {code}" + (f"/{subcode}" if subcode is not None else "")
    message = redact(str(err.get("message", ""))[:200])
    if code in RATE_LIMIT_CODES or (code is not None and 80001 <= code <= 80014):
        return RateLimited(f"{label}: rate limited", retry_after=meta_wait_seconds(response, now))
    if err.get("is_transient") is True or code in (1, 2) or response.status >= 500:
        return TransientError(f"{label}: {message}")
    if code in (190, 102):
        if subcode in REVOKED_SUBCODES:
            return AuthRevoked(f"{label}: access was revoked ({message})")
        return AuthExpired(f"{label}: the access token is no longer valid ({message})")
    if (code == 100 and subcode == 33) or response.status == 404:
        return ObjectGone(f"{label}: {message}", answer=response.body)
    return PermanentError(f"{label}: {message}")


@dataclass(frozen=True, slots=True)
class GraphAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8", "surrogateescape"))
        except ValueError:
            return None


class GraphClient:
    """Graph API calls with one access token, through ``FacebookAdsApi``."""

    def __init__(
        self,
        *,
        access_token: str = "",
        app_secret: str = "",
        version: str = GRAPH_API_VERSION,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        for secret in (access_token, app_secret):
            register_secret(secret)
        self.version = version
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self.rng = rng or random.Random()
        session = FacebookSession(
            app_secret=(app_secret or None) if access_token else None,
            access_token=access_token or None,
            timeout=self.policy.timeout_seconds,
        )
        if session.requests.params.get("access_token") is None:
            session.requests.params.pop("access_token", None)
        self._captured: list[Any] = []
        #: the SDK's requests session (media downloads go through it too)
        self.session: Any = session.requests
        session.requests.hooks["response"].append(self._capture)
        self.api = FacebookAdsApi(session, api_version=version)

    def _capture(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self._captured.append(response)
        return response

    def call(
        self,
        method: str,
        path: str | tuple[str, ...],
        params: Mapping[str, Any] | None = None,
        *,
        files: Mapping[str, Any] | None = None,
        secrets: Iterable[str] = (),
        idempotent: bool = True,
    ) -> GraphAnswer:
        """One Graph request (``path``: node and edge, or a full paging URL), with retries
        (``idempotent`` False: see :func:`not_repeated`)."""
        params = dict(params or {})
        url = path if isinstance(path, str) else f"{GRAPH_URL}/{self.version}/" + "/".join(path)
        transport = LibraryCall(
            lambda: self.api.call(method, path, params=params, files=dict(files or {})),
            self._captured,
            idempotent=idempotent,
        )
        client = HttpClient(
            transport=transport,
            clock=self.clock,
            policy=self.policy,
            rng=self.rng,
            classify=classify if idempotent else not_repeated(classify),
        )
        response = client.send(
            Request(method, strip_tokens(url)),
            secrets=secrets,
        )
        return GraphAnswer(response.status, response.headers, response.body)

    def get(self, path: str | tuple[str, ...], params: Mapping[str, Any] | None = None) -> Any:
        """GET returning the decoded JSON (None when the body is not JSON)."""
        return self.call("GET", path, params).json()


def strip_tokens(url: str) -> str:
    """A paging URL without the token parameters Graph puts in it (cursors never hold one)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    kept = [(k, v) for k, v in query if k not in _STRIPPED_PARAMS]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def next_page(data: Mapping[str, Any]) -> str:
    """The paging token of a Graph list: ``after=<cursor>``, or the ``next`` URL (tokens
    removed) for time-paged lists; "" at the end."""
    paging = data.get("paging")
    if not isinstance(paging, dict) or not paging.get("next"):
        return ""
    cursors = paging.get("cursors")
    if isinstance(cursors, dict) and isinstance(cursors.get("after"), str) and cursors["after"]:
        return "after=" + str(cursors["after"])
    nxt = paging["next"]
    return strip_tokens(str(nxt)) if isinstance(nxt, str) else ""


def list_request(
    client: GraphClient, path: tuple[str, ...], params: dict[str, Any], page: str
) -> GraphAnswer:
    """The first page of a Graph list, or the page a :func:`next_page` token points to."""
    if page.startswith("after="):
        return client.call("GET", path, {**params, "after": page[len("after=") :]})
    if page.startswith("https://"):
        return client.call("GET", page)
    return client.call("GET", path, params)


def graph_time(value: Any) -> str | None:
    """Graph times (``2025-06-02T09:15:00+0000``) as ISO 8601; None when not a time."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return None
    return parsed.astimezone(dt.UTC).isoformat()


def epoch(value: str | None) -> float:
    return dt.datetime.fromisoformat(value).timestamp() if value else 0.0


# --- Facebook Login (shared by Pages and Instagram) --------------------------------------------


def dialog_url(
    *,
    version: str,
    app_id: str,
    redirect_uri: str,
    state: str,
    scopes: Iterable[str],
    code_challenge: str,
) -> str:
    query = urlencode(
        {
            "client_id": app_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "response_type": "code",
            "scope": ",".join(scopes),
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{DIALOG_URL}/{version}/dialog/oauth?{query}"


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The Pages a Facebook Login granted, with their (non-expiring) Page tokens."""

    pages: list[dict[str, Any]]
    scopes: tuple[str, ...]


def login(
    *,
    client: GraphClient,
    app_id: str,
    app_secret: str,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    page_fields: str,
) -> LoginResult:
    """Authorization code -> short-lived user token -> long-lived user token -> Page tokens.

    Page tokens obtained with a long-lived user token do not expire; they stop working when the
    person's role on the Page, their password or the app's authorisation changes (error 190)."""
    for secret in (code, code_verifier, app_secret):
        register_secret(secret)
    short = client.call(
        "GET",
        ("oauth", "access_token"),
        {
            "client_id": app_id,
            "client_secret": app_secret,
            "redirect_uri": redirect_uri,
            "code": code,
            "code_verifier": code_verifier,
        },
    ).json()
    if not isinstance(short, dict) or not isinstance(short.get("access_token"), str):
        raise PermanentError("Facebook did not return an access token for the code")
    register_secret(short["access_token"])
    long_lived = client.call(
        "GET",
        ("oauth", "access_token"),
        {
            "grant_type": "fb_exchange_token",
            "client_id": app_id,
            "client_secret": app_secret,
            "fb_exchange_token": short["access_token"],
        },
    ).json()
    if not isinstance(long_lived, dict) or not isinstance(long_lived.get("access_token"), str):
        raise PermanentError("Facebook did not exchange the token for a long-lived one")
    user = GraphClient(
        access_token=long_lived["access_token"],
        app_secret=app_secret,
        version=client.version,
        clock=client.clock,
        policy=client.policy,
        rng=client.rng,
    )
    granted = user.get(("me", "permissions"))
    scopes = tuple(
        sorted(
            p["permission"]
            for p in (granted or {}).get("data", [])
            if isinstance(p, dict) and p.get("status") == "granted" and "permission" in p
        )
    )
    accounts = user.get(("me", "accounts"), {"fields": page_fields, "limit": 100})
    pages = [
        p
        for p in (accounts or {}).get("data", [])
        if isinstance(p, dict) and isinstance(p.get("access_token"), str) and p.get("id")
    ]
    for page in pages:
        register_secret(page["access_token"])
    return LoginResult(pages=pages, scopes=scopes)


def choose_for_account(
    candidates: list[dict[str, Any]],
    account: AccountRef | None,
    *,
    names: Callable[[dict[str, Any]], set[str]],
    what: str,
) -> dict[str, Any]:
    """The one of the ``candidates`` a login granted (Pages, Instagram accounts) that is the
    registered ``account``: its handle or stored id is among the candidate's ``names`` (id,
    username, name). Without an account, the login must have granted exactly one."""
    labels = ", ".join(sorted(next(iter(sorted(names(c))), "?") for c in candidates)) or "none"
    if account is not None:
        wanted = {account.bare_handle.lower(), account.remote_account_id.lower()} - {""}
        matches = [c for c in candidates if wanted & {n.lower() for n in names(c)}]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise PermanentError(
                f"Facebook granted access to {len(candidates)} {what} ({labels[:300]}), none of "
                f"them {account.handle}: select {account.handle} in the Facebook dialog."
            )
        candidates = matches
    if len(candidates) != 1:
        raise PermanentError(
            f"Facebook granted access to {len(candidates)} {what}; connect one at a time by "
            "selecting only that one in the Facebook dialog."
        )
    return candidates[0]


def entry_names(entry: dict[str, Any]) -> set[str]:
    """How a registered account may name a Page or an Instagram account: id, username, name."""
    return {str(entry[k]) for k in ("id", "username", "name") if entry.get(k)}


#: a captured item's media reference that stands for a Graph object (a post, an Instagram
#: media) whose media are looked up when fetched: their CDN URLs are signed and change on every
#: read, so they are not part of the item's payload (a re-read would look like an edit)
GRAPH_OBJECT: Final = "graph:"


def graph_object(object_id: str) -> MediaRef:
    return MediaRef(ref=GRAPH_OBJECT + object_id)


def graph_object_id(media: MediaRef) -> str | None:
    return media.ref[len(GRAPH_OBJECT) :] if media.ref.startswith(GRAPH_OBJECT) else None


class GraphConnector(RetryingConnector):
    """What the Facebook Pages and Instagram connectors share: the Graph API version and the
    app's credentials from the operator's settings, the re-fetch window, a Graph client, and
    Facebook Login (the dialog, then the code for Page tokens)."""

    #: the fields asked of each Page the login granted
    page_fields: ClassVar[str] = "id,name,username,access_token,tasks"

    @property
    def version(self) -> str:
        return str(self.config.get("graph_api_version") or GRAPH_API_VERSION)

    @property
    def app_id(self) -> str:
        return str(self.config.get("app_id", ""))

    @property
    def app_secret(self) -> str:
        return str(self.config.get("app_secret", ""))

    @property
    def window_seconds(self) -> float:
        return rescan_window_seconds(self.config)

    def client(self, access_token: str = "") -> GraphClient:
        return GraphClient(
            access_token=access_token,
            app_secret=self.app_secret,
            version=self.version,
            clock=self.clock,
            policy=self.policy,
            rng=self.rng,
        )

    def fetch_media(self, *, tokens: TokenSet, media: MediaRef, max_bytes: int) -> bytes:
        """A medium from Meta's CDN (its signed URL, as the Graph API gave it just before), with
        the Graph SDK's session. The URL is signed: no access token is sent with it."""
        check_declared_size(media, max_bytes)
        if graph_object_id(media) is not None:
            raise PermanentError("a Graph object is not a medium; resolve it first")
        client = self.client()  # without a token: nothing but the signed URL goes to the CDN
        return download(
            session=client.session,
            url=media.ref,
            max_bytes=max_bytes,
            clock=self.clock,
            policy=self.policy,
            rng=self.rng,
        )

    def authorization_url(
        self, *, redirect_uri: str, state: str, code_challenge: str, handle: str
    ) -> str:
        return dialog_url(
            version=self.version,
            app_id=self.app_id,
            redirect_uri=redirect_uri,
            state=state,
            scopes=self.scopes(),
            code_challenge=code_challenge,
        )

    def login(self, *, code: str, redirect_uri: str, code_verifier: str) -> LoginResult:
        return login(
            client=self.client(),
            app_id=self.app_id,
            app_secret=self.app_secret,
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
            page_fields=self.page_fields,
        )
