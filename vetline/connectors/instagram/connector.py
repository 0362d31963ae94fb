"""Instagram professional (business and creator) accounts through the Instagram Graph API, by
way of the Facebook Page they are linked to (Facebook Login; the Page token acts for the
Instagram account). Shares the Graph client of :mod:`vetline.connectors.facebook.graph`.

Operator settings (``VETLINE_CONNECTORS["instagram"]``): ``app_id``, ``app_secret``, and
optionally ``graph_api_version``, ``rescan_days``, ``scopes`` and ``media_url_for``: the dotted
path of a callable that stores an image where Instagram can download it and returns its public
HTTPS URL (Instagram's content publishing API only takes images by URL).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any, Final

from django.utils.module_loading import import_string

from vetline.connectors.base import (
    AccountRef,
    ActivityPage,
    Capabilities,
    Media,
    MediaRef,
    PermanentError,
    Profile,
    PublishRequest,
    PublishResult,
    TokenSet,
    Unsupported,
)
from vetline.connectors.facebook import messaging
from vetline.connectors.facebook.connector import confirm, profile_snapshot
from vetline.connectors.facebook.graph import (
    GraphClient,
    GraphConnector,
    ObjectGone,
    choose_for_account,
    entry_names,
    epoch,
    graph_object,
    graph_object_id,
    graph_time,
    list_request,
    next_page,
)
from vetline.connectors.http import Clock, RetryPolicy
from vetline.connectors.media import with_media
from vetline.connectors.polling import (
    SweepCursor,
    Task,
    TaskResult,
    item,
    own_post,
    run_step,
    unreadable,
)

NETWORK: Final = "instagram"
PROFILE_FIELDS: Final = "id,username,name,biography,website"
# Content fields only: media_url/thumbnail_url are signed CDN URLs that change, and counts move.
MEDIA_FIELDS: Final = "id,caption,media_type,media_product_type,permalink,timestamp,username"
TAG_FIELDS: Final = "id,caption,media_type,permalink,timestamp,username"
REPLY_FIELDS: Final = "id,text,timestamp,username,from,parent_id"
COMMENT_FIELDS: Final = f"{REPLY_FIELDS},replies{{{REPLY_FIELDS}}}"
PAGE_FIELDS: Final = "id,name,access_token,instagram_business_account{id,username}"
# Asked when a post's media are fetched (not with the post: the URLs are signed and change).
MEDIA_URL_FIELDS: Final = "media_type,media_url,children{media_type,media_url}"


def media_files(media: Any) -> list[MediaRef]:
    """The files of an IG Media: its ``media_url``, or each child's for a carousel
    (``CAROUSEL_ALBUM``). A video's ``media_url`` is the video file."""
    if not isinstance(media, dict):
        return []
    children = media.get("children")
    data = children.get("data") if isinstance(children, dict) else None
    entries = [c for c in data if isinstance(c, dict)] if isinstance(data, list) else [media]
    found: list[MediaRef] = []
    for entry in entries:
        url = entry.get("media_url")
        if isinstance(url, str) and url and url not in {f.ref for f in found}:
            found.append(MediaRef(ref=url))
    return found


class InstagramConnector(GraphConnector):
    network = NETWORK
    label = "Instagram"
    page_fields = PAGE_FIELDS
    default_scopes = (
        "instagram_basic",
        "instagram_content_publish",
        "instagram_manage_comments",
        "instagram_manage_messages",
        "pages_show_list",
        "pages_read_engagement",
    )
    scope_requirements = {
        "publish_post": ("instagram_content_publish",),
        "publish_reply": ("instagram_manage_comments",),
        "publish_media": ("instagram_content_publish",),
        "delete": ("instagram_manage_comments",),
        "capture_own_posts": ("instagram_basic",),
        "capture_replies": ("instagram_manage_comments",),
        "capture_mentions": ("instagram_basic",),
        "capture_direct_messages": ("instagram_manage_messages",),
        "capture_edits": ("instagram_basic",),
        "capture_deletions": ("instagram_basic",),
        "capture_profile": ("instagram_basic",),
    }
    capabilities = Capabilities(
        publish_post=True,
        publish_reply=True,
        publish_media=True,
        delete=True,
        capture_own_posts=True,
        capture_replies=True,
        capture_mentions=True,
        capture_direct_messages=True,
        capture_edits=True,
        capture_deletions=True,
        capture_profile=True,
        streaming=False,
        oauth2=True,
        token_refresh=False,
        search=False,
        notes=(
            "Only professional (business or creator) accounts linked to a Facebook Page can be "
            "connected; personal Instagram accounts have no API.",
            "Publishing: Instagram downloads images from a public HTTPS URL (JPEG); the "
            "operator must configure media_url_for. Every post needs at least one image; "
            "text-only posts do not exist on Instagram.",
            "Deleting: the API deletes comments only. Media (posts) cannot be deleted through "
            "the API; they must be deleted in the Instagram app.",
            "Mentions: media the account is tagged in are captured (/tags). @mentions in other "
            "people's captions and comments are only delivered by webhooks (mentioned_media "
            "needs the media id from the webhook), which Vetline does not receive yet.",
            "Direct messages (Instagram Messaging API): need instagram_manage_messages with "
            "Advanced Access, the account linked to the Page, and 'Allow access to messages' "
            "turned on in the Instagram app; replies are allowed within 24 hours of the "
            "person's last message (7 days with the HUMAN_AGENT tag). Vetline captures them.",
            "Edits: captions can be edited but the API gives no edit time or history; an edit "
            "is found by re-reading the re-fetch window (rescan_days) and comparing content. "
            "Deletions are found the same way (media missing, then reported non-existent).",
            "Hashtag search exists (30 hashtags a week per account) but is not wired up.",
        ),
    )

    def __init__(
        self,
        *,
        config: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        media_url_for: Callable[[Media], str] | None = None,
    ) -> None:
        super().__init__(config=config, clock=clock, policy=policy, rng=rng)
        configured = self.config.get("media_url_for")
        self.media_url_for = media_url_for or (
            import_string(str(configured)) if configured else None
        )

    def ig_user_id(self, client: GraphClient, tokens: TokenSet) -> str:
        if tokens.remote_account_id:
            return tokens.remote_account_id
        page = client.get(("me",), {"fields": "instagram_business_account{id}"})
        account = page.get("instagram_business_account") if isinstance(page, dict) else None
        if not isinstance(account, dict) or not isinstance(account.get("id"), str):
            raise PermanentError("the Page of this token has no Instagram professional account")
        return str(account["id"])

    # --- Authentication -----------------------------------------------------------------------
    def exchange_code(
        self,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        account: AccountRef | None = None,
    ) -> TokenSet:
        result = self.login(code=code, redirect_uri=redirect_uri, code_verifier=code_verifier)
        linked = [p for p in result.pages if isinstance(p.get("instagram_business_account"), dict)]
        page = choose_for_account(
            linked,
            account,
            names=lambda p: entry_names(p["instagram_business_account"]),
            what="Pages with an Instagram professional account",
        )
        ig_account = page["instagram_business_account"]
        return TokenSet(
            access_token=page["access_token"],
            expires_at=None,
            scopes=result.scopes,
            remote_account_id=str(ig_account["id"]),
            remote_handle=str(ig_account.get("username") or ig_account["id"]),
        )

    # --- Publishing ---------------------------------------------------------------------------
    def _kind_of(self, client: GraphClient, remote_id: str) -> str:
        """``media`` or ``comment``: Instagram ids do not say, so ask for a media-only field."""
        try:
            client.call("GET", (remote_id,), {"fields": "media_type"})
        except ObjectGone:
            raise
        except PermanentError:
            return "comment"
        return "media"

    def publish(
        self, *, tokens: TokenSet, request: PublishRequest, account: AccountRef | None = None
    ) -> PublishResult:
        client = self.client(tokens.access_token)
        if request.reply_to_remote_id:
            if request.media:
                raise PermanentError("Instagram comments are text only")
            target = request.reply_to_remote_id
            edge = "comments" if self._kind_of(client, target) == "media" else "replies"
            answer = client.call(
                "POST", (target, edge), {"message": request.text}, idempotent=False
            ).json()
            return PublishResult(_id(answer), "")
        if not request.media:
            raise PermanentError("an Instagram post needs at least one image")
        if self.media_url_for is None:
            raise Unsupported(
                "Instagram downloads images from a public URL; configure media_url_for to "
                "publish media"
            )
        ig_user = self.ig_user_id(client, tokens)
        urls = [self.media_url_for(m) for m in request.media]
        if len(urls) == 1:
            params: dict[str, Any] = {"image_url": urls[0], "caption": request.text}
            if request.media[0].alt_text:
                params["alt_text"] = request.media[0].alt_text
            container = _id(
                client.call("POST", (ig_user, "media"), params, idempotent=False).json()
            )
        else:
            children = [
                _id(
                    client.call(
                        "POST",
                        (ig_user, "media"),
                        {"image_url": url, "is_carousel_item": "true"},
                        idempotent=False,
                    ).json()
                )
                for url in urls
            ]
            container = _id(
                client.call(
                    "POST",
                    (ig_user, "media"),
                    {
                        "media_type": "CAROUSEL",
                        "children": ",".join(children),
                        "caption": request.text,
                    },
                    idempotent=False,
                ).json()
            )
        media_id = _id(
            client.call(
                "POST", (ig_user, "media_publish"), {"creation_id": container}, idempotent=False
            ).json()
        )
        permalink = client.get((media_id,), {"fields": "permalink"})
        url = permalink.get("permalink") if isinstance(permalink, dict) else None
        return PublishResult(media_id, url if isinstance(url, str) else "")

    def delete(
        self, *, tokens: TokenSet, remote_id: str, account: AccountRef | None = None
    ) -> None:
        client = self.client(tokens.access_token)
        try:
            if self._kind_of(client, remote_id) == "media":
                raise Unsupported(
                    "Instagram's API cannot delete posts (media); delete it in the Instagram app"
                )
            client.call("DELETE", (remote_id,))
        except ObjectGone:
            return

    # --- Capture ------------------------------------------------------------------------------
    def fetch_activity(
        self, *, tokens: TokenSet, handle: str, cursor: str | None, limit: int = 100
    ) -> ActivityPage:
        client = self.client(tokens.access_token)
        ig_user = self.ig_user_id(client, tokens)
        dms = not tokens.scopes or "instagram_manage_messages" in tokens.scopes
        page_ids: list[str] = []

        def page_id() -> str:
            if not page_ids:
                me = client.get(("me",), {"fields": "id"})
                if not isinstance(me, dict) or not isinstance(me.get("id"), str):
                    raise PermanentError("the Graph API did not say which Page this token is for")
                page_ids.append(me["id"])
            return page_ids[0]

        def seed() -> list[Task]:
            tasks = [Task("profile"), Task("media"), Task("tags")]
            if dms:
                tasks.append(Task("conversations"))
            return tasks

        def run(task: Task, state: SweepCursor) -> TaskResult:
            limit_ = max(1, min(limit, 100))
            if task.stream == "profile":
                return self._profile_task(client, ig_user, handle)
            if task.stream == "media":
                return self._media_task(client, task, state, ig_user, handle, limit_)
            if task.stream == "comments":
                return self._comments_task(client, task, handle, limit_)
            if task.stream == "tags":
                return self._tags_task(client, task, state, ig_user, limit_)
            if task.stream == "conversations":
                return messaging.conversations(
                    client,
                    task,
                    state,
                    page_id=page_id(),
                    network=NETWORK,
                    limit=limit_,
                    platform="instagram",
                )
            if task.stream == "messages":
                return messaging.messages(
                    client, task, state, own_ids={ig_user}, network=NETWORK, limit=limit_
                )
            if task.stream == "confirm":
                return confirm(client, task, state, author=handle, now=self.clock.now())
            return TaskResult()

        return run_step(
            cursor, now=self.clock.now(), window_seconds=self.window_seconds, seed=seed, run=run
        )

    def _profile_task(self, client: GraphClient, ig_user: str, handle: str) -> TaskResult:
        result = TaskResult()
        answer = client.call("GET", (ig_user,), {"fields": PROFILE_FIELDS})
        body = answer.json()
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            result.items.append(answer.body)
        else:
            result.items.append(profile_snapshot(answer.body, body, handle=handle))
        return result

    def _media_task(
        self,
        client: GraphClient,
        task: Task,
        state: SweepCursor,
        ig_user: str,
        handle: str,
        limit: int,
    ) -> TaskResult:
        result = TaskResult()
        answer = list_request(
            client, (ig_user, "media"), {"fields": MEDIA_FIELDS, "limit": limit}, task.page
        )
        rows = messaging.page_data(answer, network=NETWORK, stream="media", result=result)
        if rows is None:
            return result
        oldest = None
        for row in rows:
            at = graph_time(row.get("timestamp")) if isinstance(row, dict) else None
            if not isinstance(row, dict) or not isinstance(row.get("id"), str) or at is None:
                result.items.append(
                    unreadable(row, network=NETWORK, stream="media", reason="no id or timestamp")
                )
                continue
            oldest = epoch(at)
            if oldest < state.window_start:
                break  # newest first: the rest is older than the re-fetch window
            own_post(
                state,
                result,
                row,
                remote_id=row["id"],
                created=oldest,
                kind="post",
                direction="outbound",
                author=handle,
                text=row.get("caption") if isinstance(row.get("caption"), str) else "",
                thread_id=row["id"],
                network_timestamp=at,
            )
            last = result.items[-1]
            if isinstance(last, dict):
                with_media(last, [graph_object(row["id"])])
            result.follow_ups.append(Task("comments", row["id"]))
        token = next_page(answer.json())
        if token and (oldest is None or oldest >= state.window_start):
            result.next_page = Task("media", "", token)
        return result

    def _comments_task(
        self, client: GraphClient, task: Task, handle: str, limit: int
    ) -> TaskResult:
        result = TaskResult()
        try:
            answer = list_request(
                client,
                (task.target, "comments"),
                {"fields": COMMENT_FIELDS, "limit": min(limit, 50)},
                task.page,
            )
        except ObjectGone:
            return result
        rows = messaging.page_data(answer, network=NETWORK, stream="comments", result=result)
        if rows is None:
            return result
        for row in rows:
            replies = row.get("replies") if isinstance(row, dict) else None
            entries = [row]
            if isinstance(replies, dict) and isinstance(replies.get("data"), list):
                entries += replies["data"]
            for entry in entries:
                self._comment(entry, task.target, handle, result)
        token = next_page(answer.json())
        if token:
            result.next_page = Task("comments", task.target, token)
        return result

    def _comment(self, row: Any, media_id: str, handle: str, result: TaskResult) -> None:
        at = graph_time(row.get("timestamp")) if isinstance(row, dict) else None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str) or at is None:
            result.items.append(
                unreadable(row, network=NETWORK, stream="comments", reason="no id or timestamp")
            )
            return
        author = row.get("username") if isinstance(row.get("username"), str) else ""
        parent = row.get("parent_id") if isinstance(row.get("parent_id"), str) else ""
        # The comment as returned, without the nested replies (each is an item of its own).
        own_json = {k: v for k, v in row.items() if k != "replies"}
        result.items.append(
            item(
                own_json,
                remote_id=row["id"],
                kind="reply" if parent else "comment",
                direction="outbound" if author == handle else "inbound",
                author=author,
                text=row.get("text") if isinstance(row.get("text"), str) else "",
                parent_remote_id=parent or media_id,
                thread_id=media_id,
                network_timestamp=at,
            )
        )

    def _tags_task(
        self, client: GraphClient, task: Task, state: SweepCursor, ig_user: str, limit: int
    ) -> TaskResult:
        """Media other accounts tagged this account in: mentions, inbound."""
        result = TaskResult()
        answer = list_request(
            client, (ig_user, "tags"), {"fields": TAG_FIELDS, "limit": limit}, task.page
        )
        rows = messaging.page_data(answer, network=NETWORK, stream="tags", result=result)
        if rows is None:
            return result
        oldest = None
        for row in rows:
            at = graph_time(row.get("timestamp")) if isinstance(row, dict) else None
            if not isinstance(row, dict) or not isinstance(row.get("id"), str) or at is None:
                result.items.append(
                    unreadable(row, network=NETWORK, stream="tags", reason="no id or timestamp")
                )
                continue
            oldest = epoch(at)
            result.items.append(
                with_media(
                    item(
                        row,
                        remote_id=row["id"],
                        kind="post",
                        direction="inbound",
                        author=row.get("username") if isinstance(row.get("username"), str) else "",
                        text=row.get("caption") if isinstance(row.get("caption"), str) else "",
                        thread_id=row["id"],
                        network_timestamp=at,
                    ),
                    [graph_object(row["id"])],
                )
            )
        token = next_page(answer.json())
        if token and (oldest is None or oldest >= state.window_start):
            result.next_page = Task("tags", "", token)
        return result

    def resolve_media(self, *, tokens: TokenSet, media: MediaRef) -> list[MediaRef]:
        """An IG Media's files, asked of the Graph API when they are fetched (``media_url``,
        the children's of a carousel; see :func:`media_files`)."""
        media_id = graph_object_id(media)
        if media_id is None:
            return [media]
        client = self.client(tokens.access_token)
        return media_files(client.get((media_id,), {"fields": MEDIA_URL_FIELDS}))

    def fetch_profile(self, *, tokens: TokenSet, handle: str) -> Profile:
        client = self.client(tokens.access_token)
        body = client.get((self.ig_user_id(client, tokens),), {"fields": PROFILE_FIELDS})
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise PermanentError("the Graph API returned an unreadable Instagram profile")
        return Profile(
            handle=str(body.get("username") or handle),
            display_name=_str(body.get("name")),
            bio=_str(body.get("biography")),
            url=_str(body.get("website")),
            remote_account_id=body["id"],
            raw=body,
        )


def _id(answer: Any) -> str:
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), str | int):
        raise PermanentError("the Graph API did not return the id of what was published")
    return str(answer["id"])


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
