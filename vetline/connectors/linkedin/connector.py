"""LinkedIn: member posts and organization page posts (Posts API), their comments (Social
Actions), images (Images API), profile (OpenID ``/v2/userinfo``; organization lookup).

Operator settings (``VETLINE_CONNECTORS["linkedin"]``): ``client_id``, ``client_secret``, and
optionally ``linkedin_version`` (YYYYMM), ``rescan_days`` and ``scopes``.

Which account: a handle of the form ``urn:li:organization:<id>`` is an organization page
(captured with the token of one of its administrators); any other handle is the member who
connected, whose URN (``urn:li:person:<sub>``) is stored as the connection's remote account id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from vetline.connectors.base import (
    AccountRef,
    ActivityPage,
    AuthRevoked,
    Capabilities,
    CapabilityReport,
    MediaRef,
    PermanentError,
    Profile,
    PublishRequest,
    PublishResult,
    TokenSet,
    raw_item,
    report_from_scopes,
)
from vetline.connectors.http import RetryingConnector
from vetline.connectors.linkedin.client import LINKEDIN_VERSION, LinkedInApi
from vetline.connectors.media import avatar_media, check_declared_size, download, with_media
from vetline.connectors.polling import (
    ObjectGone,
    SweepCursor,
    Task,
    TaskResult,
    decode_json,
    deletion,
    item,
    own_post,
    rescan_window_seconds,
    run_step,
    text_of,
    unreadable,
)

NETWORK: Final = "linkedin"
ORG_PREFIX: Final = "urn:li:organization:"
#: Counters in comment payloads change on every read; they are not communications, and keeping
#: them would make each re-read a conflicting version of the comment.
VOLATILE_COMMENT_KEYS: Final = ("likesSummary", "commentsSummary")
#: media URN type -> the API that hands out its download URL (Images, Videos, Documents APIs)
MEDIA_APIS: Final = {
    "image": "/images/{id}",
    "video": "/videos/{id}",
    "document": "/documents/{id}",
}


def post_media(post: Mapping[str, Any]) -> list[MediaRef]:
    """The media of a post (Posts API ``content``): a single ``media`` (image, video or
    document URN, with ``altText``), the images of ``multiImage``, an ``article``'s thumbnail.
    The URNs are resolved to download URLs when the media are fetched."""
    content = post.get("content")
    if not isinstance(content, Mapping):
        return []
    pairs: list[tuple[Any, Any]] = []
    media = content.get("media")
    if isinstance(media, Mapping):
        pairs.append((media.get("id"), media.get("altText")))
    multi = content.get("multiImage")
    images = multi.get("images") if isinstance(multi, Mapping) else None
    for image in images if isinstance(images, list) else []:
        if isinstance(image, Mapping):
            pairs.append((image.get("id"), image.get("altText")))
    article = content.get("article")
    if isinstance(article, Mapping):
        pairs.append((article.get("thumbnail"), article.get("thumbnailAltText")))
    found: list[MediaRef] = []
    for urn, alt in pairs:
        if isinstance(urn, str) and urn.startswith("urn:li:") and urn not in {f.ref for f in found}:
            found.append(MediaRef(ref=urn, alt_text=alt if isinstance(alt, str) else ""))
    return found


class LinkedInConnector(RetryingConnector):
    network = NETWORK
    label = "LinkedIn"
    default_scopes = ("openid", "profile", "email", "w_member_social", "r_member_social")
    #: a member's own account; an organization page needs the organization scopes instead
    scope_requirements = {
        "publish_post": ("w_member_social",),
        "publish_reply": ("w_member_social",),
        "publish_media": ("w_member_social",),
        "delete": ("w_member_social",),
        "capture_own_posts": ("r_member_social",),
        "capture_replies": ("r_member_social",),
        "capture_edits": ("r_member_social",),
        "capture_deletions": ("r_member_social",),
        "capture_profile": ("profile",),
    }
    organization_scope_requirements: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "publish_post": ("w_organization_social",),
        "publish_reply": ("w_organization_social",),
        "publish_media": ("w_organization_social",),
        "delete": ("w_organization_social",),
        "capture_own_posts": ("r_organization_social",),
        "capture_replies": ("r_organization_social",),
        "capture_edits": ("r_organization_social",),
        "capture_deletions": ("r_organization_social",),
        "capture_profile": ("r_organization_social",),
    }
    capabilities = Capabilities(
        publish_post=True,
        publish_reply=True,
        publish_media=True,
        delete=True,
        capture_own_posts=True,
        capture_replies=True,
        capture_mentions=False,
        capture_direct_messages=False,
        capture_edits=True,
        capture_deletions=True,
        capture_profile=True,
        streaming=False,
        oauth2=True,
        token_refresh=True,
        search=False,
        notes=(
            "Reading member posts needs r_member_social, which LinkedIn grants to approved "
            "partners only; organization pages need r_organization_social / "
            "w_organization_social (Community Management API) and an administrator's token.",
            "Direct messages are not available through the API (only to approved messaging "
            "partners), so they cannot be captured.",
            "Mentions of the account in other members' posts are not exposed by the API.",
            "Edits: posts can be edited (partial update) and carry lastModifiedAt, but there is "
            "no edit history; an edit is captured as a new version when the post is re-read "
            "within the re-fetch window (rescan_days). Edited comments by others arrive as "
            "conflicting versions, kept in quarantine.",
            "Deletions are detected only by re-fetch: an own post missing from the window "
            "that LinkedIn then answers 404 for.",
            "Refresh tokens exist only for apps LinkedIn enabled them for; otherwise the "
            "60-day access token must be renewed by reconnecting.",
            "Search of posts is not offered by the API.",
        ),
    )

    @property
    def version(self) -> str:
        return str(self.config.get("linkedin_version") or LINKEDIN_VERSION)

    @property
    def client_id(self) -> str:
        return str(self.config.get("client_id", ""))

    @property
    def client_secret(self) -> str:
        return str(self.config.get("client_secret", ""))

    @property
    def window_seconds(self) -> float:
        return rescan_window_seconds(self.config)

    def api(self, access_token: str = "") -> LinkedInApi:
        return LinkedInApi(
            access_token=access_token,
            version=self.version,
            clock=self.clock,
            policy=self.policy,
            rng=self.rng,
        )

    def probe(self, *, tokens: TokenSet, account: AccountRef | None = None) -> CapabilityReport:
        """The default probe, with the organization scopes for an organization page."""
        handle = _handle(account, tokens)
        needs = (
            self.organization_scope_requirements
            if handle.startswith(ORG_PREFIX)
            else self.scope_requirements
        )
        allowed, missing = report_from_scopes(self.capabilities, needs, tokens.scopes)
        return CapabilityReport(allowed=tuple(allowed), missing=missing)

    # --- Authentication -----------------------------------------------------------------------
    def authorization_url(
        self, *, redirect_uri: str, state: str, code_challenge: str, handle: str
    ) -> str:
        # LinkedIn's web flow has no PKCE (it is for native-app partners); state guards it.
        auth = self.api().auth_client(
            client_id=self.client_id, client_secret=self.client_secret, redirect_uri=redirect_uri
        )
        return str(auth.generate_member_auth_url(scopes=list(self.scopes()), state=state))

    def _tokens(self, answer: bytes, *, previous_refresh: str = "") -> TokenSet:
        data = decode_json(answer)
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            raise PermanentError("LinkedIn did not return an access token")
        access = data["access_token"]
        expires_in = data.get("expires_in")
        now = dt.datetime.fromtimestamp(self.clock.now(), dt.UTC)
        userinfo = decode_json(self.api(access).get("/userinfo", versioned=False).body)
        sub = userinfo.get("sub") if isinstance(userinfo, dict) else None
        if not isinstance(sub, str) or not sub:
            raise PermanentError("LinkedIn did not say which member granted access")
        scope = data.get("scope")
        return TokenSet(
            access_token=access,
            refresh_token=str(data.get("refresh_token") or previous_refresh),
            expires_at=now + dt.timedelta(seconds=int(expires_in))
            if isinstance(expires_in, int)
            else None,
            scopes=tuple(s for s in scope.replace(",", " ").split() if s)
            if isinstance(scope, str)
            else (),
            remote_account_id=f"urn:li:person:{sub}",
            remote_handle=text_of(userinfo.get("name")) if isinstance(userinfo, dict) else "",
        )

    def exchange_code(
        self,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        account: AccountRef | None = None,
    ) -> TokenSet:
        api = self.api()
        auth = api.auth_client(
            client_id=self.client_id, client_secret=self.client_secret, redirect_uri=redirect_uri
        )
        answer = api.send(
            "POST /oauth/v2/accessToken",
            lambda: auth.exchange_auth_code_for_access_token(code=code),
            idempotent=False,
        )
        return self._tokens(answer.body)

    def refresh(self, *, tokens: TokenSet) -> TokenSet:
        api = self.api()
        auth = api.auth_client(
            client_id=self.client_id, client_secret=self.client_secret, redirect_uri=""
        )
        try:
            answer = api.send(
                "POST /oauth/v2/accessToken",
                lambda: auth.exchange_refresh_token_for_access_token(
                    refresh_token=tokens.refresh_token
                ),
            )
        except PermanentError as exc:
            raise AuthRevoked(f"LinkedIn refused the refresh token ({exc.message})") from exc
        return self._tokens(answer.body, previous_refresh=tokens.refresh_token)

    # --- Publishing ---------------------------------------------------------------------------
    def _author(self, api: LinkedInApi, tokens: TokenSet, handle: str = "") -> str:
        if handle.startswith(ORG_PREFIX):
            return handle
        if tokens.remote_account_id.startswith("urn:li:"):
            return tokens.remote_account_id
        info = decode_json(api.get("/userinfo", versioned=False).body)
        if not isinstance(info, dict) or not isinstance(info.get("sub"), str):
            raise PermanentError("LinkedIn did not say which member this token is for")
        return f"urn:li:person:{info['sub']}"

    def _upload_image(self, api: LinkedInApi, author: str, media: Any) -> str:
        answer = decode_json(
            api.action(
                "/images", "initializeUpload", {"initializeUploadRequest": {"owner": author}}
            ).body
        )
        value = answer.get("value") if isinstance(answer, dict) else None
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("uploadUrl"), str)
            or not isinstance(value.get("image"), str)
        ):
            raise PermanentError("LinkedIn did not return an image upload URL")
        api.upload(value["uploadUrl"], media.content, media.mime_type)
        return str(value["image"])

    def publish(
        self, *, tokens: TokenSet, request: PublishRequest, account: AccountRef | None = None
    ) -> PublishResult:
        api = self.api(tokens.access_token)
        author = self._author(api, tokens, _handle(account, tokens))
        if request.reply_to_remote_id:
            return self._comment(api, author, request)
        entity: dict[str, Any] = {
            "author": author,
            "commentary": request.text,
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        images = [(self._upload_image(api, author, m), m.alt_text) for m in request.media]
        if len(images) == 1:
            entity["content"] = {"media": {"id": images[0][0], "altText": images[0][1]}}
        elif images:
            entity["content"] = {
                "multiImage": {"images": [{"id": i, "altText": alt} for i, alt in images]}
            }
        answer = api.create("/posts", entity)
        urn = answer.header("x-restli-id") or ""
        if not urn:
            raise PermanentError("LinkedIn did not return the id of the post")
        return PublishResult(urn, f"https://www.linkedin.com/feed/update/{urn}/")

    def _comment(self, api: LinkedInApi, author: str, request: PublishRequest) -> PublishResult:
        if request.media:
            raise PermanentError("LinkedIn comments published by Vetline are text only")
        target = request.reply_to_remote_id
        entity: dict[str, Any] = {"actor": author, "message": {"text": request.text}}
        if target.startswith("urn:li:comment:("):
            # urn:li:comment:(<post or activity urn>,<comment id>)
            entity["object"] = target[len("urn:li:comment:(") :].rsplit(",", 1)[0]
            entity["parentComment"] = target
        else:
            entity["object"] = target
        answer = api.create("/socialActions/{id}/comments", entity, keys={"id": target})
        body = decode_json(answer.body)
        urn = (
            (body.get("commentUrn") or body.get("$URN")) if isinstance(body, dict) else None
        ) or answer.header("x-restli-id")
        if not isinstance(urn, str) or not urn:
            raise PermanentError("LinkedIn did not return the id of the comment")
        return PublishResult(urn, f"https://www.linkedin.com/feed/update/{entity['object']}/")

    def delete(
        self, *, tokens: TokenSet, remote_id: str, account: AccountRef | None = None
    ) -> None:
        api = self.api(tokens.access_token)
        try:
            if remote_id.startswith("urn:li:comment:("):
                target, comment_id = remote_id[len("urn:li:comment:(") : -1].rsplit(",", 1)
                api.delete(
                    "/socialActions/{target}/comments/{id}",
                    keys={"target": target, "id": comment_id},
                    query={"actor": self._author(api, tokens, _handle(account, tokens))},
                )
            else:
                api.delete("/posts/{id}", keys={"id": remote_id})
        except ObjectGone:
            return

    # --- Capture ------------------------------------------------------------------------------
    def fetch_media(self, *, tokens: TokenSet, media: MediaRef, max_bytes: int) -> bytes:
        """A post's medium: its URN resolved to a download URL with LinkedIn's client (Images,
        Videos or Documents API, ``downloadUrl``), then the bytes from that signed URL with the
        client's session (the URL carries its own authorization: the token is not sent). A
        member's profile picture is announced as its signed URL and downloaded the same way."""
        check_declared_size(media, max_bytes)
        if media.ref.startswith("https://"):  # a member's picture: already a signed URL
            return download(
                session=self.api(tokens.access_token).restli.session,
                url=media.ref,
                max_bytes=max_bytes,
                clock=self.clock,
                policy=self.policy,
                rng=self.rng,
            )
        kind = media.ref.split(":")[2] if media.ref.count(":") >= 3 else ""
        path = MEDIA_APIS.get(kind)
        if path is None:
            raise PermanentError(f"LinkedIn media of type {kind[:40]!r} cannot be downloaded")
        api = self.api(tokens.access_token)
        info = decode_json(api.get(path, keys={"id": media.ref}).body)
        url = info.get("downloadUrl") if isinstance(info, dict) else None
        if not isinstance(url, str) or not url:
            status = info.get("status") if isinstance(info, dict) else None
            raise PermanentError(f"LinkedIn gave no download URL for the medium (status {status})")
        return download(
            session=api.restli.session,
            url=url,
            max_bytes=max_bytes,
            clock=self.clock,
            policy=self.policy,
            rng=self.rng,
        )

    def fetch_activity(
        self, *, tokens: TokenSet, handle: str, cursor: str | None, limit: int = 100
    ) -> ActivityPage:
        api = self.api(tokens.access_token)
        author = self._author(api, tokens, handle)
        limit = max(1, min(limit, 100))

        def run(task: Task, state: SweepCursor) -> TaskResult:
            if task.stream == "profile":
                return self._profile_task(api, author, handle)
            if task.stream == "posts":
                return self._posts_task(api, task, state, author, handle, limit)
            if task.stream == "comments":
                return self._comments_task(api, task, author, handle, limit)
            if task.stream == "confirm":
                return self._confirm_task(api, task, state, handle)
            return TaskResult()

        return run_step(
            cursor,
            now=self.clock.now(),
            window_seconds=self.window_seconds,
            seed=lambda: [Task("profile"), Task("posts", "", "0")],
            run=run,
        )

    def _profile_task(self, api: LinkedInApi, author: str, handle: str) -> TaskResult:
        result = TaskResult()
        if author.startswith(ORG_PREFIX):
            answer = api.get("/organizations/{id}", keys={"id": author[len(ORG_PREFIX) :]})
            name_keys: tuple[str, ...] = ("localizedName",)
            bio_keys: tuple[str, ...] = ("localizedDescription",)
        else:
            answer = api.get("/userinfo", versioned=False)
            name_keys = ("name",)
            bio_keys = ()
        body = decode_json(answer.body)
        if not isinstance(body, dict):
            result.items.append(answer.body)
            return result
        digest = hashlib.sha256(answer.body).hexdigest()[:16]
        name = next((text_of(body.get(k)) for k in name_keys if text_of(body.get(k))), "")
        bio = next((text_of(body.get(k)) for k in bio_keys if text_of(body.get(k))), "")
        snapshot = raw_item(
            answer.body,
            remote_id=f"profile:{author}:{digest}",
            kind="profile_snapshot",
            direction="outbound",
            author=handle,
            text=f"{name}\n{bio}".strip(),
        )
        # A member's picture (OpenID userinfo ``picture``) is its avatar; an organization's
        # lookup as requested carries no logo.
        picture = None if author.startswith(ORG_PREFIX) else body.get("picture")
        result.items.append(with_media(snapshot, avatar_media(picture)))
        return result

    def _posts_task(
        self,
        api: LinkedInApi,
        task: Task,
        state: SweepCursor,
        author: str,
        handle: str,
        limit: int,
    ) -> TaskResult:
        result = TaskResult()
        start = int(task.page) if task.page.isdigit() else 0
        answer = api.finder(
            "/posts",
            "author",
            query={"author": author, "start": start, "count": limit, "sortBy": "LAST_MODIFIED"},
        )
        data = decode_json(answer.body)
        if not isinstance(data, dict) or not isinstance(data.get("elements"), list):
            result.items.append(
                answer.body
                if data is None
                else unreadable(data, network=NETWORK, stream="posts", reason="no elements")
            )
            return result
        elements = data["elements"]
        window_ms = state.window_start * 1000
        reached_end = len(elements) < limit
        for post in elements:
            created = post.get("createdAt") if isinstance(post, dict) else None
            modified = post.get("lastModifiedAt", created) if isinstance(post, dict) else None
            if (
                not isinstance(post, dict)
                or not isinstance(post.get("id"), str)
                or not isinstance(created, int)
                or not isinstance(modified, int)
            ):
                result.items.append(
                    unreadable(post, network=NETWORK, stream="posts", reason="no id or times")
                )
                continue
            if modified < window_ms:
                reached_end = True  # sorted by last modification: the rest is older
                break
            own_post(
                state,
                result,
                post,
                remote_id=post["id"],
                created=created / 1000,
                kind="post",
                direction="outbound" if post.get("author", author) == author else "inbound",
                author=handle,
                text=text_of(post.get("commentary")),
                thread_id=post["id"],
                network_timestamp=_ms(post.get("publishedAt") or created),
            )
            last = result.items[-1]
            if isinstance(last, dict):
                with_media(last, post_media(post))
            result.follow_ups.append(Task("comments", post["id"], "0"))
        if not reached_end:
            result.next_page = Task("posts", "", str(start + len(elements)))
        return result

    def _comments_task(
        self, api: LinkedInApi, task: Task, author: str, handle: str, limit: int
    ) -> TaskResult:
        result = TaskResult()
        start = int(task.page) if task.page.isdigit() else 0
        try:
            answer = api.get_all(
                "/socialActions/{id}/comments",
                keys={"id": task.target},
                query={"start": start, "count": limit},
            )
        except ObjectGone:
            return result
        data = decode_json(answer.body)
        if not isinstance(data, dict) or not isinstance(data.get("elements"), list):
            result.items.append(
                answer.body
                if data is None
                else unreadable(data, network=NETWORK, stream="comments", reason="no elements")
            )
            return result
        elements = data["elements"]
        for comment in elements:
            urn = (
                (comment.get("commentUrn") or comment.get("$URN"))
                if isinstance(comment, dict)
                else None
            )
            created = comment.get("created") if isinstance(comment, dict) else None
            at = created.get("time") if isinstance(created, dict) else None
            if not isinstance(urn, str) or not isinstance(at, int) or not isinstance(created, dict):
                result.items.append(
                    unreadable(comment, network=NETWORK, stream="comments", reason="no id or time")
                )
                continue
            actor = text_of(comment.get("actor")) or text_of(created.get("actor"))
            parent = text_of(comment.get("parentComment"))
            message = comment.get("message")
            kept = {k: v for k, v in comment.items() if k not in VOLATILE_COMMENT_KEYS}
            result.items.append(
                item(
                    kept,
                    remote_id=urn,
                    kind="reply" if parent else "comment",
                    direction="outbound" if actor == author else "inbound",
                    author=handle if actor == author else actor,
                    text=text_of(message.get("text")) if isinstance(message, dict) else "",
                    parent_remote_id=parent or task.target,
                    thread_id=text_of(comment.get("object")) or task.target,
                    network_timestamp=_ms(at),
                )
            )
            summary = comment.get("commentsSummary")
            if (
                not parent
                and isinstance(summary, dict)
                and isinstance(summary.get("totalFirstLevelComments"), int)
                and summary["totalFirstLevelComments"] > 0
            ):
                result.follow_ups.append(Task("comments", urn, "0"))
        paging = data.get("paging") if isinstance(data.get("paging"), dict) else {}
        total = paging.get("total") if isinstance(paging, dict) else None
        if len(elements) >= limit and (not isinstance(total, int) or start + limit < total):
            result.next_page = Task("comments", task.target, str(start + len(elements)))
        return result

    def _confirm_task(
        self, api: LinkedInApi, task: Task, state: SweepCursor, handle: str
    ) -> TaskResult:
        result = TaskResult()
        try:
            api.get("/posts/{id}", keys={"id": task.target})
        except ObjectGone as gone:
            at = dt.datetime.fromtimestamp(self.clock.now(), dt.UTC).isoformat()
            result.items.append(
                deletion(task.target, answer=gone.answer or b"{}", author=handle, at=at)
            )
            return result
        if task.target in state.known:
            result.seen[task.target] = state.known[task.target]
        return result

    def fetch_profile(self, *, tokens: TokenSet, handle: str) -> Profile:
        api = self.api(tokens.access_token)
        author = self._author(api, tokens, handle)
        if author.startswith(ORG_PREFIX):
            body = decode_json(
                api.get("/organizations/{id}", keys={"id": author[len(ORG_PREFIX) :]}).body
            )
            if not isinstance(body, dict):
                raise PermanentError("LinkedIn returned an unreadable organization")
            vanity = text_of(body.get("vanityName"))
            return Profile(
                handle=handle,
                display_name=text_of(body.get("localizedName")),
                bio=text_of(body.get("localizedDescription")),
                url=f"https://www.linkedin.com/company/{vanity}/" if vanity else "",
                remote_account_id=author,
                raw=body,
            )
        body = decode_json(api.get("/userinfo", versioned=False).body)
        if not isinstance(body, dict):
            raise PermanentError("LinkedIn returned an unreadable profile")
        return Profile(
            handle=handle,
            display_name=text_of(body.get("name")),
            avatar_url=text_of(body.get("picture")),
            remote_account_id=author,
            raw=body,
        )


def _handle(account: AccountRef | None, tokens: TokenSet) -> str:
    """The handle of the account a call is for: an organization page's URN publishes as the
    organization, anything else as the member who connected."""
    return account.bare_handle if account is not None else tokens.remote_handle


def _ms(value: Any) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return dt.datetime.fromtimestamp(value / 1000, dt.UTC).isoformat()
